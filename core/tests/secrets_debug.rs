//! Secrets never reach `Debug`: every public type of the client that holds one is
//! formatted here with a recognizable secret inside, and the output must not contain it.

use holdfast_core::vault::{Passphrase, VaultKey};
use holdfast_core::{AuthClient, ClientConfig, KeySource, SyncCredentials};

const SECRET: &str = "s3cr3t-value-that-must-never-be-printed";

#[test]
fn no_public_type_prints_its_secret() {
    let passphrase = KeySource::Passphrase(Passphrase::new(SECRET));
    let key = VaultKey::from_bytes(&[0x5a; 32]).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let config = ClientConfig::new(
        "https://auth.example.com",
        dir.path().join("h.db"),
        KeySource::Passphrase(Passphrase::new(SECRET)),
    );
    let config_debug = format!("{config:?}");
    let client = AuthClient::new(config).unwrap();
    let credentials = SyncCredentials {
        access_token: SECRET.to_owned(),
        device_id: "dev-1".to_owned(),
        proof: SECRET.to_owned(),
    };
    let outputs = [
        format!("{passphrase:?}"),
        format!("{:?}", Passphrase::new(SECRET)),
        format!("{key:?}"),
        config_debug,
        format!("{client:?}"),
        format!("{credentials:?}"),
    ];
    for output in outputs {
        assert!(!output.contains(SECRET), "{output}");
    }
    // The raw key bytes (0x5a = 'Z') must not appear in any encoding either.
    assert!(!format!("{key:?}").contains("ZZZZ") && !format!("{key:?}").contains("5a5a"));
}
