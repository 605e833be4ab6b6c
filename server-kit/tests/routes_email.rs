//! Look-alike emails (issue 12, part 8): one account per address however it is written,
//! invisible and direction-changing characters refused, and accounts stored before
//! normalization still signing in. Over loopback HTTP against the real routes.

mod support;

use holdfast_server_kit::passwords::{Argon2Params, PasswordHasher};
use holdfast_server_kit::store::NewUser;
use serde_json::json;
use support::{PASSWORD, TestServer};

fn unique() -> String {
    uuid::Uuid::new_v4().simple().to_string()
}

async fn sign_up(server: &TestServer, email: &str) -> support::Reply {
    server
        .post("/auth/signup", json!({ "email": email, "password": PASSWORD }))
        .await
}

async fn sign_in(server: &TestServer, email: &str) -> support::Reply {
    server
        .post("/auth/signin", json!({ "email": email, "password": PASSWORD }))
        .await
}

#[tokio::test(flavor = "multi_thread")]
async fn look_alike_spellings_name_one_account() {
    let server = TestServer::start(|_| {}).await;
    let id = unique();
    let plain = format!("jose-{id}@example.com");
    let created = sign_up(&server, &format!("jos\u{00E9}-{id}@example.com"))
        .await
        .expect_status(201);
    let user_id = created.data()["user"]["id"].as_str().unwrap().to_owned();
    assert_eq!(
        created.data()["user"]["email"],
        format!("jos\u{00E9}-{id}@example.com")
    );
    // Decomposed accent, full-width letters, upper case: the same account.
    for same in [
        format!("jose\u{0301}-{id}@example.com"),
        format!("\u{FF4A}os\u{00E9}-{id}@\u{FF45}xample.com"),
        format!("JOS\u{00C9}-{id}@EXAMPLE.COM"),
    ] {
        sign_up(&server, &same).await.expect_error(409, "EMAIL_TAKEN");
        let reply = sign_in(&server, &same).await.expect_status(200);
        assert_eq!(reply.data()["user"]["id"], user_id.as_str(), "{same:?}");
    }
    // Without the accent it is another address.
    sign_in(&server, &plain)
        .await
        .expect_error(401, "INVALID_CREDENTIALS");
}

#[tokio::test(flavor = "multi_thread")]
async fn invisible_direction_and_mixed_script_emails_are_refused() {
    let server = TestServer::start(|_| {}).await;
    let id = unique();
    for bad in [
        format!("ali\u{200B}ce-{id}@example.com"),
        format!("alice-{id}\u{202E}moc.elpmaxe@example.com"),
        format!("alice-{id}@exa\u{200D}mple.com"),
        // A Cyrillic 'а' among Latin letters, in the local part and in the domain.
        format!("p\u{0430}ypal-{id}@example.com"),
        format!("paypal-{id}@ex\u{0430}mple.com"),
    ] {
        sign_up(&server, &bad).await.expect_error(400, "VALIDATION_ERROR");
    }
    // Wholly Cyrillic parts are an ordinary address (digits belong to no script).
    let digits = uuid::Uuid::new_v4().as_u128() % 1_000_000_000_000;
    sign_up(
        &server,
        &format!("\u{043F}\u{043E}\u{0447}\u{0442}\u{0430}-{digits}@\u{043F}\u{0440}\u{0438}\u{043C}\u{0435}\u{0440}.com"),
    )
    .await
    .expect_status(201);
}

#[tokio::test(flavor = "multi_thread")]
async fn accounts_stored_before_normalization_keep_signing_in() {
    let server = TestServer::start(|_| {}).await;
    let hasher = PasswordHasher::new(
        1,
        Argon2Params {
            memory_kib: 1024,
            iterations: 1,
            parallelism: 1,
        },
    );
    let id = unique();
    // What earlier builds stored: the email lower-cased only.
    let full_width = format!("\u{FF4A}ohn-{id}@example.com");
    let invisible = format!("ali\u{200B}ce-{id}@example.com");
    for email in [&full_width, &invisible] {
        server
            .stores
            .users
            .create_user(NewUser {
                id: uuid::Uuid::new_v4().to_string(),
                email: email.clone(),
                name: None,
                created_at_ms: server.now_ms(),
                password: hasher.hash(PASSWORD).await.unwrap(),
                metadata: None,
            })
            .await
            .unwrap();
        sign_in(&server, email).await.expect_status(200);
        sign_in(&server, &email.to_uppercase()).await.expect_status(200);
    }
    // Signing up the stored spelling again is refused as taken, not made a second account.
    sign_up(&server, &full_width)
        .await
        .expect_error(409, "EMAIL_TAKEN");
}
