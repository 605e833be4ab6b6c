//! The kit's PostgreSQL tables live in a schema of their own (`holdfast`) unless told
//! otherwise, so an application's own `users` table in the same database is untouched; a
//! database whose search path already holds the kit's tables (a deployment from before the
//! default schema) keeps them there. Each case runs in a database of its own, created and
//! dropped here (`HOLDFAST_TEST_POSTGRES_URL`, never skipped).

mod postgres_support;
mod support;

use std::sync::Arc;

use holdfast_server_kit::Stores;
use holdfast_server_kit::clock::{Clock, ManualClock, SystemClock};
use holdfast_server_kit::store::postgres::{DEFAULT_SCHEMA, PostgresStore};
use postgres_support::{connect, url};
use support::{TestServer, email};

/// A scratch database, dropped (with its connections) when the guard goes.
struct Database {
    name: String,
    admin_url: String,
}

impl Database {
    async fn create() -> Database {
        let admin_url = url();
        let name = format!("hfdb_{}", uuid::Uuid::new_v4().simple());
        connect(&admin_url)
            .await
            .batch_execute(&format!("CREATE DATABASE \"{name}\""))
            .await
            .expect("create a scratch database");
        Database { name, admin_url }
    }

    /// The server URL with this database.
    fn url(&self) -> String {
        let base = self.admin_url.split('?').next().unwrap_or(&self.admin_url);
        let (server, _) = base.rsplit_once('/').expect("a database in the URL");
        format!("{server}/{}", self.name)
    }
}

impl Drop for Database {
    fn drop(&mut self) {
        let (url, name) = (self.admin_url.clone(), self.name.clone());
        postgres_support::block_on_thread(move || {
            Box::pin(async move {
                if let Ok((client, connection)) = tokio_postgres::connect(&url, tokio_postgres::NoTls).await {
                    tokio::spawn(async move {
                        let _ = connection.await;
                    });
                    let _ = client
                        .batch_execute(&format!("DROP DATABASE IF EXISTS \"{name}\" WITH (FORCE)"))
                        .await;
                }
            })
        });
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn an_apps_own_users_table_is_left_alone() {
    let database = Database::create().await;
    let app = connect(&database.url()).await;
    app.batch_execute(
        "CREATE TABLE users (id SERIAL PRIMARY KEY, nickname TEXT NOT NULL);
         INSERT INTO users (nickname) VALUES ('the app''s own user');",
    )
    .await
    .expect("the app's table");

    let store = PostgresStore::connect(&database.url(), None)
        .await
        .expect("the kit beside the app");
    assert_eq!(store.schema(), Some(DEFAULT_SCHEMA));
    let server = TestServer::start_with_stores(
        Stores::single(Arc::new(store)),
        ManualClock::new(SystemClock.now_ms()),
        |_| {},
    )
    .await;
    let address = email("beside");
    let session = server.sign_up(&address).await;
    server.me(&session.access).await.expect_status(200);

    let apps: Vec<String> = app
        .query("SELECT nickname FROM public.users", &[])
        .await
        .expect("the app's users")
        .iter()
        .map(|row| row.get(0))
        .collect();
    assert_eq!(apps, vec!["the app's own user".to_owned()]);
    let kits: i64 = app
        .query_one(
            "SELECT count(*) FROM holdfast.users WHERE email = $1",
            &[&address],
        )
        .await
        .expect("the kit's users")
        .get(0);
    assert_eq!(kits, 1);
}

#[tokio::test(flavor = "multi_thread")]
async fn tables_already_in_the_search_path_stay_there() {
    let database = Database::create().await;
    // A deployment from before the default schema: its tables in `public`.
    let legacy = PostgresStore::connect(&database.url(), Some("public"))
        .await
        .expect("tables in public");
    drop(legacy);
    let store = PostgresStore::connect(&database.url(), None)
        .await
        .expect("reconnect");
    assert_eq!(store.schema(), None, "the tables stay where they are");
    let holdfast: bool = connect(&database.url())
        .await
        .query_one("SELECT to_regnamespace('holdfast') IS NOT NULL", &[])
        .await
        .expect("query")
        .get(0);
    assert!(!holdfast, "no second, empty set of tables was made");
}
