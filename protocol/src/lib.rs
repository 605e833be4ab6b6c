//! The Holdfast wire contract, defined once for the client core and the server kit.
//!
//! `docs/PROTOCOL.md` is the normative text; this crate is its executable form. It holds no
//! I/O and no HTTP client or server code, so both sides depend on it without pulling in each
//! other's machinery:
//!
//! - [`wire`]: request and response bodies of every route, and the `{data}` / `{error, code}`
//!   envelopes;
//! - [`endpoint`]: every route declared once (method, path, bodies, status, what authorizes
//!   it), for the client's calls and the server's route table;
//! - [`error`]: the machine-readable [`ErrorCode`]s and the HTTP status each one travels with;
//! - [`claims`]: JWT claims, the exact HS256 header bytes, and unverified decoding for clients;
//! - [`jwk`]: P-256 public keys as JWK strings, validation, and RFC 7638 thumbprints;
//! - [`signature`]: IEEE P1363 (`r‖s`) ECDSA signatures as base64url;
//! - [`challenge`]: the device challenge format;
//! - [`proof`]: device proofs (PROTOCOL 6.1, DPoP-shaped compact JWS);
//! - [`validate`]: the input rules both sides apply (email, password, names, device ids);
//! - [`b64`]: base64url helpers;
//! - [`clock`]: time through a trait, so both sides test every expiry without sleeping.
//!
//! Secrets (tokens, passwords) held by these types never appear in their `Debug` output.

pub mod b64;
pub mod challenge;
pub mod claims;
pub mod clock;
pub mod endpoint;
pub mod error;
pub mod jwk;
pub mod percent;
pub mod proof;
pub mod signature;
pub mod validate;
pub mod wire;

mod redact;

pub use claims::{Claims, ClaimsRef, Cnf, MfaClaim, TokenType};
pub use error::{EndReason, ErrorBody, ErrorCode};
pub use jwk::{JwkError, PublicJwk};
