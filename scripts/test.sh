#!/usr/bin/env bash
# Runs every check and test of the workspace, installing what it needs.
# This is the README's test command; .ci/run calls it unchanged.
set -euo pipefail
cd "$(dirname "$0")/.."

step() { printf '\n== %s\n' "$*"; }

step "rustfmt and clippy components"
rustup component add rustfmt clippy >/dev/null 2>&1 || true

step "cargo fmt --check"
cargo fmt --all -- --check
cargo fmt --manifest-path fuzz/Cargo.toml -- --check

step "cargo clippy (all targets, warnings are errors)"
cargo clippy --workspace --all-targets --locked -- -D warnings

step "server kit features (an embedder compiles only the backends it uses)"
for features in postgres sqlite redis smtp; do
    cargo check -p holdfast-server-kit --no-default-features --features "$features" --locked
done
if cargo tree -p holdfast-server-kit --no-default-features --features postgres -e normal --locked \
    | grep -E '(rusqlite|redis|lettre|clap|tracing-subscriber) v'; then
    echo "the postgres-only server kit pulls in the dependencies above" >&2
    exit 1
fi

step "cargo doc (every crate, no warnings: broken links and the like fail)"
RUSTDOCFLAGS="-D warnings" cargo doc --workspace --no-deps --locked

step "SMTP test server (aiosmtpd in a venv under target/, for the mail tests)"
HOLDFAST_TEST_SMTP_PYTHON="$(bash scripts/smtp-venv.sh)"
export HOLDFAST_TEST_SMTP_PYTHON

step "cargo test (every crate, unit and integration, against real loopback servers)"
cargo test --workspace --locked

step "Swift bindings (the committed generated sources match holdfast-ffi)"
bash bindings/swift/generate.sh --check

step "Python bindings (maturin wheel into target/py-venv, pytest against a real server)"
bash bindings/python/run_tests.sh

step "Kotlin bindings (generated, kotlinc from npm, JNA from Debian; tests on the JVM against a real server)"
bash bindings/kotlin/run_tests.sh

step "fuzzing (every target of fuzz/ briefly, from the committed seed corpus; exits non-zero on a crash)"
bash scripts/fuzz.sh 15

echo
echo "all checks passed"
