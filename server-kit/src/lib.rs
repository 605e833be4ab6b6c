//! Holdfast's server kit: what a sync server needs to authenticate users and devices.
//!
//! It speaks the `@korajs/auth` HTTP protocol (see `holdfast_protocol` and `PROTOCOL.md`),
//! so Kora's own web client works against it, with Holdfast's fixes and extensions.
//!
//! How the parts fit:
//! - [`config`]: everything a deployment chooses ([`ServerConfig`]);
//! - [`tokens`]: HS256 tokens with key rotation, issuance and verification;
//! - [`passwords`]: Argon2id (default) and Kora's PBKDF2-SHA512, hashed off the executor;
//! - [`devices`]: challenges and P-256 signature verification;
//! - [`store`]: storage traits, with SQLite (embedded default) and in-memory backends;
//! - [`guards`]: rate limits, temporary IP blocks, password policy, client addresses;
//! - [`service`]: the routes as a framework-agnostic handler ([`AuthService::handle`]);
//! - [`http`]: an axum `Router` over the service, and a server with graceful shutdown;
//! - [`clock`]: time, injectable for tests.

pub mod clock;
pub mod config;
pub mod devices;
pub mod guards;
pub mod http;
pub mod passwords;
pub mod service;
pub mod store;
pub mod tokens;

pub use config::{ConfigError, ServerConfig};
pub use service::{AuthRequest, AuthResponse, AuthService};
pub use store::Stores;
