//! The typed sealed-record layer: the format it writes, the older and newer formats it
//! meets, and what it refuses; and `read_sealed` over a real store.

use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use super::*;
use crate::session::records::{DeviceRecord, SessionRecord, SignOutCall};
use crate::store::ClientStore;
use crate::vault::VaultKey;

const SECRET: &str = "secret-token-value-7c1d";

fn vault() -> Vault {
    Vault::new(VaultKey::generate().expect("a key"))
}

fn ns() -> Namespace {
    Namespace::for_server("https://auth.example.com").expect("a namespace")
}

fn session() -> SessionRecord {
    SessionRecord {
        user: serde_json::from_value(json!({
            "id": "user-1", "email": "a@example.com", "name": null,
            "emailVerified": true, "createdAt": 1_700_000_000_000_i64
        }))
        .expect("a user"),
        access_token: format!("{SECRET}-access"),
        refresh_token: format!("{SECRET}-refresh"),
    }
}

fn device() -> DeviceRecord {
    DeviceRecord {
        device_id: "dev-1".to_owned(),
        pkcs8: Some(format!("{SECRET}-key")),
        credential: Some(format!("{SECRET}-credential")),
    }
}

fn sign_out() -> SignOutCall {
    SignOutCall {
        access_token: format!("{SECRET}-access"),
        refresh_token: format!("{SECRET}-refresh"),
    }
}

/// The JSON inside a sealed blob of record `name`.
fn opened_json(vault: &Vault, name: &str, blob: &[u8]) -> Value {
    let plain = vault.open(&ns().canonical(), name, blob).expect("opens");
    serde_json::from_slice(&plain).expect("JSON")
}

/// `json` sealed as record `name`, as another build (or today's code before versions) would.
fn sealed_raw(vault: &Vault, name: &str, json: &Value) -> Vec<u8> {
    vault
        .seal(&ns().canonical(), name, &serde_json::to_vec(json).unwrap())
        .expect("seal")
}

/// `record`'s JSON as the code before versions wrote it (no `v`).
fn unversioned<T: Serialize>(record: &T) -> Value {
    let value = serde_json::to_value(record).expect("JSON");
    assert!(value.get("v").is_none());
    value
}

fn with_version(mut value: Value, version: Value) -> Value {
    value
        .as_object_mut()
        .expect("an object")
        .insert("v".to_owned(), version);
    value
}

#[test]
fn every_record_round_trips_with_its_version_in_front() {
    let vault = vault();
    let blob = seal(&vault, &ns(), &session()).unwrap();
    let json = opened_json(&vault, "session", &blob);
    assert_eq!(json, with_version(unversioned(&session()), json!(1)));
    let plain = vault.open(&ns().canonical(), "session", &blob).unwrap();
    assert!(
        plain.starts_with(br#"{"v":1,"user":{"#),
        "the version comes first"
    );
    let back: SessionRecord = unseal(&vault, &ns(), &blob).unwrap();
    assert_eq!(back.user, session().user);
    assert_eq!(back.access_token, session().access_token);
    assert_eq!(back.refresh_token, session().refresh_token);

    let blob = seal(&vault, &ns(), &device()).unwrap();
    assert_eq!(
        opened_json(&vault, "device", &blob),
        with_version(unversioned(&device()), json!(1))
    );
    let back: DeviceRecord = unseal(&vault, &ns(), &blob).unwrap();
    assert_eq!(back.device_id, "dev-1");
    assert_eq!(back.pkcs8, device().pkcs8);
    assert_eq!(back.credential, device().credential);
    let bare = DeviceRecord {
        device_id: "dev-2".to_owned(),
        pkcs8: None,
        credential: None,
    };
    let blob = seal(&vault, &ns(), &bare).unwrap();
    assert_eq!(
        opened_json(&vault, "device", &blob),
        json!({"v": 1, "deviceId": "dev-2"})
    );

    let blob = seal(&vault, &ns(), &sign_out()).unwrap();
    assert_eq!(
        opened_json(&vault, "sign_out", &blob),
        with_version(unversioned(&sign_out()), json!(1))
    );
    let back: SignOutCall = unseal(&vault, &ns(), &blob).unwrap();
    assert_eq!(back.access_token, sign_out().access_token);
    assert_eq!(back.refresh_token, sign_out().refresh_token);
}

#[test]
fn a_record_without_a_version_is_version_0_and_reads_as_before() {
    let vault = vault();
    for version in [None, Some(json!(0))] {
        let mut json = unversioned(&session());
        if let Some(version) = &version {
            json = with_version(json, version.clone());
        }
        let blob = sealed_raw(&vault, "session", &json);
        let back: SessionRecord = unseal(&vault, &ns(), &blob).expect("version 0 reads");
        assert_eq!(back.user, session().user, "{version:?}");
        assert_eq!(back.refresh_token, session().refresh_token, "{version:?}");
    }
    let blob = sealed_raw(&vault, "device", &unversioned(&device()));
    let back: DeviceRecord = unseal(&vault, &ns(), &blob).unwrap();
    assert_eq!(back.credential, device().credential);
    let blob = sealed_raw(&vault, "sign_out", &unversioned(&sign_out()));
    let back: SignOutCall = unseal(&vault, &ns(), &blob).unwrap();
    assert_eq!(back.access_token, sign_out().access_token);
}

#[test]
fn a_record_from_a_newer_build_is_refused_with_its_version() {
    let vault = vault();
    for found in [2, 7, u32::MAX] {
        let json = with_version(unversioned(&session()), json!(found));
        let blob = sealed_raw(&vault, "session", &json);
        let error = unseal::<SessionRecord>(&vault, &ns(), &blob).expect_err("refused");
        assert_eq!(
            error,
            UnsealError::Newer {
                name: "session",
                found,
                known: 1
            }
        );
        assert_eq!(
            error.to_string(),
            format!("the session record is version {found}, newer than this build reads (version 1)")
        );
    }
    let json = with_version(unversioned(&sign_out()), json!(2));
    let blob = sealed_raw(&vault, "sign_out", &json);
    assert!(matches!(
        unseal::<SignOutCall>(&vault, &ns(), &blob),
        Err(UnsealError::Newer {
            name: "sign_out",
            found: 2,
            known: 1
        })
    ));
}

#[test]
fn a_record_under_another_name_namespace_or_key_does_not_open() {
    let vault = vault();
    let blob = seal(&vault, &ns(), &session()).unwrap();
    let tampered = Err(UnsealError::Vault(VaultError::Tampered));
    // Another record name: the device record's associated data.
    assert_eq!(unseal::<DeviceRecord>(&vault, &ns(), &blob).map(|_| ()), tampered);
    // Another namespace: another server, or an account of this one.
    let other_server = Namespace::for_server("https://other.example.com").unwrap();
    assert_eq!(
        unseal::<SessionRecord>(&vault, &other_server, &blob).map(|_| ()),
        tampered
    );
    let account = ns().for_account("user-1").unwrap();
    assert_eq!(
        unseal::<SessionRecord>(&vault, &account, &blob).map(|_| ()),
        tampered
    );
    // Another key.
    assert_eq!(
        unseal::<SessionRecord>(&self::vault(), &ns(), &blob).map(|_| ()),
        tampered
    );
    // Truncated.
    assert_eq!(
        unseal::<SessionRecord>(&vault, &ns(), &blob[..blob.len() - 1]).map(|_| ()),
        tampered
    );
    assert_eq!(
        unseal::<SessionRecord>(&vault, &ns(), &blob).unwrap().user.id,
        "user-1"
    );
}

#[test]
fn a_malformed_record_is_refused_without_quoting_it() {
    let vault = vault();
    let cases = [
        json!({"v": SECRET}),
        json!({"v": -1}),
        json!({"v": 4_294_967_296_u64}),
        json!({"v": null}),
        json!({"v": 1, "user": SECRET, "accessToken": "a", "refreshToken": "r"}),
        json!({"user": SECRET, "accessToken": "a", "refreshToken": "r"}),
        json!([SECRET]),
        json!(SECRET),
    ];
    for json in cases {
        let blob = sealed_raw(&vault, "session", &json);
        match unseal::<SessionRecord>(&vault, &ns(), &blob) {
            Err(UnsealError::Malformed(reason)) => {
                assert!(reason.contains("not a valid session"), "{reason}");
                assert!(!reason.contains(SECRET), "quotes the record: {reason}");
            }
            other => panic!("{json}: {:?}", other.map(|_| ())),
        }
    }
    let blob = vault.seal(&ns().canonical(), "session", b"not json").unwrap();
    assert!(matches!(
        unseal::<SessionRecord>(&vault, &ns(), &blob),
        Err(UnsealError::Malformed(_))
    ));
}

/// A record whose shape changed at version 2 (`body` became `text`), to show the version
/// reaches [`SealedRecord::upgrade`].
#[derive(Debug, PartialEq, Serialize, Deserialize)]
struct Note {
    text: String,
}

impl SealedRecord for Note {
    const NAME: &'static str = "note";
    const VERSION: u32 = 2;

    fn upgrade(version: u32, json: &[u8]) -> Result<Self, serde_json::Error> {
        #[derive(Deserialize)]
        struct Before {
            body: String,
        }
        if version < 2 {
            let before: Before = serde_json::from_slice(json)?;
            return Ok(Note { text: before.body });
        }
        serde_json::from_slice(json)
    }
}

#[test]
fn an_older_version_goes_through_the_records_upgrade() {
    let vault = vault();
    let note = |text: &str| Note {
        text: text.to_owned(),
    };
    for (json, expected) in [
        (json!({"body": "zero"}), note("zero")),
        (json!({"v": 1, "body": "one"}), note("one")),
        (json!({"v": 2, "text": "two"}), note("two")),
    ] {
        let blob = sealed_raw(&vault, "note", &json);
        assert_eq!(unseal::<Note>(&vault, &ns(), &blob).unwrap(), expected, "{json}");
    }
    let blob = seal(&vault, &ns(), &note("now")).unwrap();
    assert_eq!(opened_json(&vault, "note", &blob), json!({"v": 2, "text": "now"}));
    let blob = sealed_raw(&vault, "note", &json!({"v": 1, "text": "wrong shape"}));
    assert!(matches!(
        unseal::<Note>(&vault, &ns(), &blob),
        Err(UnsealError::Malformed(_))
    ));
}

/// A store with a key check for `vault`, as the session opens it.
fn store_for(vault: &Vault) -> (tempfile::TempDir, ClientStore) {
    let dir = tempfile::tempdir().unwrap();
    let store = ClientStore::open(&dir.path().join("holdfast.db")).unwrap();
    store
        .set_meta(META_KEY_CHECK, &vault.key_check().unwrap())
        .unwrap();
    (dir, store)
}

#[test]
fn read_sealed_finds_reads_old_records_and_reports_missing_ones() {
    let vault = vault();
    let (_dir, store) = store_for(&vault);
    assert!(matches!(
        read_sealed::<SessionRecord>(&store, &vault, &ns(), 0),
        Ok(Sealed::Missing)
    ));
    let version = store
        .put(&ns(), "session", &seal(&vault, &ns(), &session()).unwrap())
        .unwrap();
    match read_sealed::<SessionRecord>(&store, &vault, &ns(), 0) {
        Ok(Sealed::Found(record, found)) => {
            assert_eq!(found, version);
            assert_eq!(record.user.id, "user-1");
        }
        _ => panic!("the session is found"),
    }
    let old = sealed_raw(&vault, "device", &unversioned(&device()));
    store.put(&ns(), "device", &old).unwrap();
    assert!(matches!(
        read_sealed::<DeviceRecord>(&store, &vault, &ns(), 0),
        Ok(Sealed::Found(record, _)) if record.device_id == "dev-1"
    ));
    assert_eq!(
        store.get(&ns(), "device").unwrap().unwrap().blob,
        old,
        "not rewritten"
    );
    assert!(store.quarantined(&ns()).unwrap().is_empty());
}

#[test]
fn read_sealed_quarantines_a_record_from_a_newer_build_whole() {
    let vault = vault();
    let (_dir, store) = store_for(&vault);
    let newer = sealed_raw(
        &vault,
        "session",
        &with_version(unversioned(&session()), json!(3)),
    );
    let version = store.put(&ns(), "session", &newer).unwrap();
    assert!(matches!(
        read_sealed::<SessionRecord>(&store, &vault, &ns(), 1234),
        Ok(Sealed::Quarantined)
    ));
    assert_eq!(store.get(&ns(), "session").unwrap(), None);
    let quarantined = store.quarantined(&ns()).unwrap();
    assert_eq!(quarantined.len(), 1);
    let entry = &quarantined[0];
    assert_eq!(entry.name, "session");
    assert_eq!(entry.blob, newer, "kept byte for byte");
    assert_eq!(entry.version, version);
    assert_eq!(entry.quarantined_at_ms, 1234);
    assert_eq!(
        entry.reason,
        "the session record is version 3, newer than this build reads (version 1)"
    );
}

#[test]
fn read_sealed_neither_quarantines_nor_reads_under_a_key_changed_by_another_process() {
    let ours = vault();
    let (_dir, store) = store_for(&ours);
    let blob = seal(&ours, &ns(), &session()).unwrap();
    store.put(&ns(), "session", &blob).unwrap();
    // Another process changed the key: the store's key check is now the new key's.
    let theirs = vault();
    store
        .set_meta(META_KEY_CHECK, &theirs.key_check().unwrap())
        .unwrap();
    let resealed = seal(&theirs, &ns(), &session()).unwrap();
    store.put(&ns(), "session", &resealed).unwrap();
    match read_sealed::<SessionRecord>(&store, &ours, &ns(), 0) {
        Err(AuthError::StorageUnavailable { message }) => assert!(message.contains("another process")),
        _ => panic!("a key changed elsewhere is an error"),
    }
    assert_eq!(store.get(&ns(), "session").unwrap().unwrap().blob, resealed);
    assert!(store.quarantined(&ns()).unwrap().is_empty());
    assert!(ensure_key_unchanged(&store, &ours).is_err());
    assert!(ensure_key_unchanged(&store, &theirs).is_ok());
}
