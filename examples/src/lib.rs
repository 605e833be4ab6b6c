//! Runnable examples of Holdfast.
//!
//! - [`protocol_client`]: a minimal client written only from `PROTOCOL.md` (raw JSON over
//!   HTTP, a software P-256 key), the way Kora's JavaScript client is written. It is how
//!   the end-to-end tests prove that such a client works against the server kit.
//! - [`local_server`]: the server kit on a temporary SQLite database, on a free loopback
//!   port, for examples and tests.
//! - [`sync_client`]: a client of the server kit's WebSocket sync endpoint, connecting
//!   with the sync credentials of `holdfast_core::AuthClient`.
//! - [`load`]: a bounded load generator for the auth routes and sync admissions, against
//!   one server or several sharing PostgreSQL and Redis (loopback only), behind
//!   `src/bin/loadgen.rs`; its figures are in `docs/PERFORMANCE.md`.
//! - [`narrator`]: step-by-step narration with timings and a summary table.
//! - [`custom_sync`]: a sync endpoint of an application's own on axum, behind the kit's
//!   gate (the `Admitted` extractor and `SyncGate::watch`), closed on revocation; run by
//!   `src/bin/custom_sync.rs`, tested in `tests/tests/custom_sync.rs`.
//! - `src/bin/demo.rs`: the end-to-end demo (the README's run command): a client signs
//!   up, syncs, survives the server going away and a restart, and is cut off when
//!   another device revokes it.
//! - `src/bin/walkthrough.rs`: a narrated tour of the protocol against a local server.

pub mod custom_sync;
pub mod load;
pub mod local_server;
pub mod narrator;
pub mod protocol_client;
pub mod sync_client;

/// Installs ring as rustls's process-wide crypto provider unless one is installed.
///
/// In this workspace reqwest is also built for holdfast-core, with rustls and no built-in
/// crypto provider (Cargo unifies features), and a reqwest client built before a provider
/// exists panics. Every client these examples build calls this first.
pub fn ensure_crypto_provider() {
    let _ = rustls::crypto::ring::default_provider().install_default();
}
