//! `holdfast-server users …`: what operators do to accounts, against the same database (and
//! Redis) as the running servers. Each command prints JSON lines on stdout.
//!
//! Ending sessions is live revocation: with `--redis`, the command relays it to every
//! running instance before it exits, so their sync connections close at once; without a
//! relay, a running server sees it at its next store read (every request checks the
//! account and its sessions) and closes open sync connections within its periodic
//! re-check.

use std::sync::Arc;
use std::time::Duration;

use holdfast_server_kit::store::postgres::PostgresStore;
use holdfast_server_kit::store::{UserQuery, UserRecord, redact_url_password};
use holdfast_server_kit::{Kit, ServerConfig, Stores, tokens};
use serde_json::json;

use crate::args::{Args, UsersCommand};
use crate::database::{Database, parse_database};
use crate::secrets::{Secrets, env_secrets, find_secrets};

/// How long a command waits for its revocations to reach Redis before exiting.
const RELAY_FLUSH: Duration = Duration::from_secs(5);

/// An account as the commands print it (never its password hash).
fn describe(user: &UserRecord) -> serde_json::Value {
    json!({
        "id": user.id,
        "email": user.email,
        "name": user.name,
        "emailVerified": user.email_verified,
        "createdAt": user.created_at_ms,
        "disabledAt": user.disabled_at_ms,
    })
}

/// Runs `command` and prints its result.
pub(crate) async fn run(args: &Args, command: &UsersCommand) -> Result<(), String> {
    let kit = open(args).await?;
    let service = kit.service();
    let failed = |e: holdfast_server_kit::ApiError| e.message.to_string();
    let find = |user: &str| {
        let user = user.to_owned();
        async move {
            service
                .find_user(&user)
                .await
                .map_err(failed)?
                .ok_or_else(|| format!("no account with the id or email `{user}`"))
        }
    };
    match command {
        UsersCommand::List {
            contains,
            after,
            limit,
        } => {
            let query = UserQuery {
                email_contains: contains.as_ref().map(|text| text.to_lowercase()),
                after: after.clone(),
                limit: *limit,
            };
            for user in service.list_users(&query).await.map_err(failed)? {
                println!("{}", describe(&user));
            }
        }
        UsersCommand::Find { user } => println!("{}", describe(&find(user).await?)),
        UsersCommand::Disable { user } => {
            let user = find(user).await?;
            service.disable_user(&user.id).await.map_err(failed)?;
            let user = find(&user.id).await?;
            println!("{}", describe(&user));
        }
        UsersCommand::Enable { user } => {
            let user = find(user).await?;
            service.enable_user(&user.id).await.map_err(failed)?;
            println!("{}", describe(&find(&user.id).await?));
        }
        UsersCommand::SignOut { user } => {
            let user = find(user).await?;
            let ended = service.sign_out_everywhere(&user.id).await.map_err(failed)?;
            println!("{}", json!({ "id": user.id, "sessionsEnded": ended }));
        }
        UsersCommand::ResetMfa { user } => {
            let user = find(user).await?;
            let removed = service.remove_mfa(&user.id).await.map_err(failed)?;
            println!("{}", json!({ "id": user.id, "mfaRemoved": removed }));
        }
    }
    if !kit.flush_revocations(RELAY_FLUSH).await {
        return Err(format!(
            "the revocations did not reach Redis within {} s: running instances will see them \
             at their periodic re-check",
            RELAY_FLUSH.as_secs()
        ));
    }
    Ok(())
}

/// The kit over the servers' stores, relaying through their Redis when given. Writes no
/// secret file: signing is not needed to end sessions, so without a secret a throwaway one
/// is used.
async fn open(args: &Args) -> Result<Kit, String> {
    let database = parse_database(&args.database)?;
    let secrets = match &database {
        Database::Sqlite(path) => {
            if !path.exists() {
                return Err(format!("no database at {}", path.display()));
            }
            find_secrets(path)?
        }
        Database::Postgres(_) => match env_secrets()? {
            Some(secrets) => secrets,
            None => Secrets::Env(vec![tokens::generate_secret()]),
        },
    };
    let stores = match &database {
        Database::Sqlite(path) => {
            Stores::sqlite(path).map_err(|e| format!("cannot open {}: {e}", path.display()))?
        }
        Database::Postgres(url) => {
            let store = PostgresStore::connect(url, args.database_schema.as_deref())
                .await
                .map_err(|e| format!("cannot open {}: {e}", redact_url_password(url)))?;
            Stores::single(Arc::new(store))
        }
    };
    let mut kit = Kit::builder(ServerConfig::new(secrets.list()), stores);
    if let Some(url) = &args.redis {
        kit = kit.redis_relay(url, &args.redis_prefix);
    }
    kit.build().await.map_err(|e| e.to_string())
}
