//! The repository stands alone: its protocol document (`docs/PROTOCOL.md`) and its copy of
//! the Kora conformance vectors (`conformance/kora-vectors.json`) are what the code and the
//! tests read. These tests keep them in step with the code always, and with the project's
//! shared folder (`../shared`) whenever a checkout has it beside it.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use holdfast_protocol::ErrorCode;

fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

fn read(path: &Path) -> String {
    std::fs::read_to_string(path).unwrap_or_else(|e| panic!("cannot read {}: {e}", path.display()))
}

/// The shared folder beside the checkout, when there is one (CI has it, a plain clone does
/// not). Its absence is said on stderr, so a run without it is never mistaken for a check.
fn shared() -> Option<PathBuf> {
    let path = repo().join("../shared");
    if path.join("PROTOCOL.md").is_file() {
        Some(path)
    } else {
        eprintln!("no ../shared beside the checkout: compared the repository's own files only");
        None
    }
}

const HTTP_METHODS: [&str; 5] = ["GET", "POST", "PUT", "PATCH", "DELETE"];

/// Every backquoted `UPPER_SNAKE` word of a markdown text: the machine codes it names.
fn codes_named_in(text: &str) -> BTreeSet<String> {
    text.split('`')
        .skip(1)
        .step_by(2)
        .filter(|word| {
            word.len() > 2
                && word.chars().all(|c| c.is_ascii_uppercase() || c == '_')
                && !HTTP_METHODS.contains(word)
        })
        .map(str::to_owned)
        .collect()
}

/// Every backquoted route path of a markdown text (`/signin`, `/device/:id`, `/mfa/verify`),
/// without any method written before it.
fn routes_named_in(text: &str) -> BTreeSet<String> {
    text.split('`')
        .skip(1)
        .step_by(2)
        .filter_map(|word| word.split_whitespace().last())
        .filter(|word| {
            word.starts_with('/')
                && word.len() > 1
                && word[1..]
                    .chars()
                    .all(|c| c.is_ascii_lowercase() || "/:-".contains(c))
        })
        .map(str::to_owned)
        .collect()
}

#[test]
fn every_error_code_of_the_crate_is_documented() {
    let doc = read(&repo().join("docs/PROTOCOL.md"));
    let documented = codes_named_in(&doc);
    let missing: Vec<&str> = ErrorCode::ALL
        .iter()
        .map(|code| code.as_str())
        .filter(|code| !documented.contains(*code))
        .collect();
    assert!(missing.is_empty(), "docs/PROTOCOL.md does not name {missing:?}");
}

#[test]
fn the_document_names_every_code_and_route_of_the_shared_text() {
    let Some(shared) = shared() else { return };
    let theirs = read(&shared.join("PROTOCOL.md"));
    let ours = read(&repo().join("docs/PROTOCOL.md"));

    let our_codes = codes_named_in(&ours);
    let missing: Vec<String> = codes_named_in(&theirs).difference(&our_codes).cloned().collect();
    assert!(
        missing.is_empty(),
        "docs/PROTOCOL.md does not name the codes {missing:?}"
    );

    let our_routes = routes_named_in(&ours);
    let missing: Vec<String> = routes_named_in(&theirs)
        .difference(&our_routes)
        .cloned()
        .collect();
    assert!(
        missing.is_empty(),
        "docs/PROTOCOL.md does not name the routes {missing:?}"
    );
}

#[test]
fn the_conformance_vectors_are_the_shared_ones() {
    let ours = read(&repo().join("conformance/kora-vectors.json"));
    let parsed: serde_json::Value = serde_json::from_str(&ours).expect("our copy of the vectors is JSON");
    assert!(parsed.is_object(), "the vectors are a JSON object");
    let Some(shared) = shared() else { return };
    let theirs = read(&shared.join("conformance/kora-vectors.json"));
    assert!(
        ours == theirs,
        "conformance/kora-vectors.json differs from ../shared/conformance/kora-vectors.json: copy it again"
    );
}

#[test]
fn the_scanners_find_what_they_look_for() {
    let text = "a `TOKEN_EXPIRED` and `INTERNAL`, not `cnf.jkt`, `GET` or `Bearer`; \
                POST `/signin`, `DELETE /device/:id`, `/mfa/verify-setup`, not `/auth/me?x`";
    assert_eq!(
        codes_named_in(text),
        ["INTERNAL", "TOKEN_EXPIRED"].map(str::to_owned).into()
    );
    assert_eq!(
        routes_named_in(text),
        ["/device/:id", "/mfa/verify-setup", "/signin"]
            .map(str::to_owned)
            .into()
    );
}

#[test]
fn every_declared_endpoint_is_in_the_documents_route_table() {
    let doc = read(&repo().join("docs/PROTOCOL.md"));
    let missing: Vec<String> = holdfast_protocol::endpoint::ROUTES
        .iter()
        .map(|route| {
            format!(
                "| {} `{}` |",
                route.method.as_str(),
                route.pattern.replace("{id}", ":id")
            )
        })
        .filter(|row| !doc.contains(row.as_str()))
        .collect();
    assert!(missing.is_empty(), "docs/PROTOCOL.md has no row {missing:?}");
}
