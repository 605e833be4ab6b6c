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
//! - [`events`]: revocations published for open sync connections (PROTOCOL 6.5);
//! - [`gate`]: the sync gate: admits device-proven sync connections and says when to cut
//!   them off;
//! - [`proofs`]: device proofs (DPoP-shaped) and their replay store;
//! - [`relay`]: revocations relayed between instances through Redis;
//! - [`store`]: storage traits, with SQLite (embedded default), PostgreSQL, Redis (rate
//!   limits and proof replays) and in-memory backends;
//! - [`guards`]: rate limits, temporary IP blocks, password policy, client addresses;
//! - [`exchange`]: the framework-agnostic request, response and error, the request URL and
//!   bearer parsing;
//! - [`authn`]: the access-token and device-proof checks the routes and the gate share;
//! - [`service`]: the routes as a framework-agnostic handler ([`AuthService::handle`]);
//! - [`server`]: an axum `Router` over the service, and a server with graceful shutdown;
//! - [`sync`]: a WebSocket sync endpoint behind the gate, over a per-user shared collection;
//! - [`files`]: secret files created 0600, and warnings about exposed ones;
//! - [`mail`]: password reset and verification mails: the mailer (SMTP, in memory), the
//!   settings and the templates;
//! - [`mfa`]: one-time passwords (HOTP, TOTP), `otpauth://` URIs, secrets sealed at rest and
//!   hashed recovery codes, which the multi-factor routes (PROTOCOL 9) stand on;
//! - [`clock`]: time, injectable for tests.

pub mod authn;
pub mod clock;
pub mod config;
pub mod devices;
pub mod events;
pub mod exchange;
pub mod files;
pub mod gate;
pub mod guards;
pub mod hooks;
pub mod kit;
pub mod mail;
pub mod mfa;
pub mod passwords;
pub mod proofs;
#[cfg(feature = "redis")]
pub mod relay;
pub mod server;
pub mod service;
pub mod store;
pub mod sync;
pub mod tokens;

/// Entry points for the fuzz targets in `fuzz/` (built only under `cargo fuzz`).
#[cfg(fuzzing)]
#[doc(hidden)]
pub mod fuzzing;

pub use authn::{Authenticated, Authenticator};
pub use config::{ConfigError, ServerConfig};
pub use exchange::{ApiError, AuthRequest, AuthResponse};
/// The wire contract, whose types appear in the kit's public fields (claims, error codes,
/// the user and device bodies).
pub use holdfast_protocol as protocol;
pub use holdfast_protocol::{Claims, ErrorCode};
pub use kit::{Kit, KitBuilder, KitError};
pub use service::AuthService;
pub use store::Stores;
