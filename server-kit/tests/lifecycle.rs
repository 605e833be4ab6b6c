//! Sessions and the account lifecycle over real loopback HTTP (PROTOCOL 8), every case on
//! SQLite and on PostgreSQL: listing and ending sessions, the session limits, password
//! change and reset, email verification, account deletion and disabling. Each refused
//! refresh says why its session ended (`reason`).
//!
//! The PostgreSQL runs need a reachable server (`HOLDFAST_TEST_POSTGRES_URL`, see
//! `postgres_support`): they fail, never skip, without one. Revocation across two
//! instances is in `scale_out.rs`; mail through a real SMTP server in `smtp.rs`.

#[path = "both_backends/mod.rs"]
mod both_backends;
#[path = "postgres_support/mod.rs"]
mod postgres_support;
mod support;

#[path = "lifecycle/accounts.rs"]
mod accounts;
#[path = "lifecycle/passwords.rs"]
mod passwords;
#[path = "lifecycle/sessions.rs"]
mod sessions;

use both_backends::on_both;
pub use both_backends::{Backend, Kind};

impl Backend {
    /// Every row of the table of single-use account tokens, each column as text: what the
    /// database itself holds, read past the store API.
    pub async fn one_time_rows(&self) -> Vec<Vec<String>> {
        const QUERY: &str = "SELECT hash, kind, user_id, email, CAST(created_at_ms AS TEXT), \
                             CAST(expires_at_ms AS TEXT) FROM one_time_tokens";
        match &self.schema {
            None => {
                let path = self.server.db_path();
                support::blocking(move || {
                    let conn = rusqlite::Connection::open(path).expect("open the SQLite file");
                    let mut statement = conn.prepare(QUERY).expect("query");
                    statement
                        .query_map([], |row| (0..6).map(|i| row.get::<_, String>(i)).collect())
                        .expect("rows")
                        .collect::<Result<Vec<Vec<String>>, _>>()
                        .expect("text columns")
                })
                .await
            }
            Some(schema) => {
                let client = postgres_support::connect(&schema.url).await;
                let query = QUERY.replace("one_time_tokens", &format!("\"{}\".one_time_tokens", schema.name));
                client
                    .query(&query, &[])
                    .await
                    .expect("query")
                    .iter()
                    .map(|row| (0..6).map(|i| row.get::<_, String>(i)).collect())
                    .collect()
            }
        }
    }
}

on_both!(
    sessions::sessions_are_listed_newest_first_with_the_callers_marked,
    sessions::one_session_ends_and_says_so_at_its_refresh,
    sessions::another_users_session_is_not_found,
    sessions::revoke_others_keeps_only_the_caller,
    sessions::sign_out_all_ends_every_session,
    sessions::an_idle_session_expires,
    sessions::a_session_ends_at_its_absolute_lifetime,
    sessions::a_sign_in_beyond_the_maximum_ends_the_least_recently_used,
    sessions::sign_out_and_device_revocation_say_why,
    sessions::a_session_ended_on_purpose_is_not_undone_by_device_relogin,
    passwords::a_password_change_renews_the_caller_and_ends_the_others,
    passwords::a_wrong_current_password_is_refused_and_limited,
    passwords::a_reset_ends_every_session_and_its_token_works_once,
    passwords::reset_requests_answer_alike_and_store_only_hashes,
    passwords::reset_tokens_expire_and_are_capped,
    accounts::an_email_is_verified_by_its_token_once,
    accounts::verification_mail_is_limited_and_bound_to_the_address,
    accounts::deleting_the_account_needs_its_password_and_ends_everything,
    accounts::a_disabled_account_is_refused_everywhere_until_enabled,
);
