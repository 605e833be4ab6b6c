//! End-to-end tests across Holdfast's crates and processes live in `tests/`; this crate
//! has no library code of its own.
