use std::borrow::Cow;

use super::*;

/// Parses `json` both ways: the two must agree, accepted or refused.
fn both(json: &str) -> Option<Claims> {
    let owned = serde_json::from_str::<Claims>(json).ok();
    let borrowed = ClaimsRef::from_json(json.as_bytes()).map(ClaimsRef::into_owned);
    assert_eq!(owned, borrowed, "{json}");
    owned
}

fn kora_payloads() -> Vec<String> {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../conformance/kora-vectors.json");
    let text = std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{path}: {e}"));
    let vectors: serde_json::Value = serde_json::from_str(&text).unwrap();
    ["access", "deviceCredential"]
        .iter()
        .map(|name| {
            let token = vectors
                .pointer(&format!("/jwt/{name}/token"))
                .and_then(serde_json::Value::as_str)
                .unwrap();
            let (_, payload, _) = crate::claims::split_compact(token).unwrap();
            String::from_utf8(crate::b64::decode(payload).unwrap()).unwrap()
        })
        .collect()
}

const HOLDFAST: &str = r#"{"jti":"0b7e9d4a-6c2f-4e8b-a1d3-5f9c2e7b4a60","sub":"5f0c6a1e","dev":"device-3c9e0b2a","type":"access","iat":1700000000,"exp":1700000900,"fam":"f-1","cnf":{"jkt":"VfgaAVYfO1paNyhrn-87ShJMMRBGtlxiFWr4uWfJzI4"},"aal":2,"amr":["pwd","otp"],"auth_time":1700000000,"mfa":"pending","ext":{"plan":"pro","n":[1,2]}}"#;

#[test]
fn kora_vectors_agree_and_borrow() {
    for payload in kora_payloads() {
        let owned = both(&payload).expect("a Kora vector parses");
        let borrowed = ClaimsRef::from_json(payload.as_bytes()).unwrap();
        assert!(matches!(borrowed.jti, Cow::Borrowed(_)), "{payload}");
        assert!(matches!(borrowed.sub, Cow::Borrowed(_)), "{payload}");
        assert_eq!(borrowed.assurance(), owned.assurance());
        assert_eq!(borrowed.mfa_pending(), owned.mfa_pending());
        assert_eq!(Claims::from(borrowed), owned);
    }
}

#[test]
fn holdfast_claims_agree_and_borrow() {
    let owned = both(HOLDFAST).unwrap();
    assert_eq!(
        owned.amr.as_deref(),
        Some(&["pwd".to_owned(), "otp".to_owned()][..])
    );
    let borrowed = ClaimsRef::from_json(HOLDFAST.as_bytes()).unwrap();
    assert!(matches!(borrowed.fam, Some(Cow::Borrowed("f-1"))));
    assert!(matches!(
        &borrowed.cnf,
        Some(CnfRef {
            jkt: Cow::Borrowed(_)
        })
    ));
    assert!(
        borrowed
            .amr
            .iter()
            .flatten()
            .all(|method| matches!(method, Cow::Borrowed(_)))
    );
    assert!(borrowed.mfa_pending());
    assert_eq!(borrowed.assurance(), 2);
    // What Holdfast serializes reads back the same both ways.
    assert_eq!(both(&owned.to_json()), Some(owned));
}

#[test]
fn escaped_strings_are_unescaped_into_owned_ones() {
    let json = r#"{"jti":"j\u0031","sub":"a\"b","dev":"d\\e","type":"acc\u0065ss","iat":1,"exp":2,"fam":"f\n","dpk":"\u00e9t\u00e9","cnf":{"jkt":"t\/u"},"amr":["p\u0077d"]}"#;
    let owned = both(json).unwrap();
    assert_eq!(owned.jti, "j1");
    assert_eq!(owned.sub, "a\"b");
    assert_eq!(owned.dpk.as_deref(), Some("été"));
    assert_eq!(owned.amr, Some(vec!["pwd".to_owned()]));
    let borrowed = ClaimsRef::from_json(json.as_bytes()).unwrap();
    assert!(matches!(borrowed.jti, Cow::Owned(_)));
    assert!(matches!(borrowed.fam, Some(Cow::Owned(_))));
}

#[test]
fn unknown_null_and_absent_members_are_read_alike() {
    let base = r#""jti":"j","sub":"u","dev":"d","type":"refresh","iat":1,"exp":2"#;
    for extra in [
        "",
        r#","nbf":5,"iss":{"a":[1,2,{"b":null}]},"aud":["x"]"#,
        r#","dpk":null,"fam":null,"cnf":null,"amr":null,"aal":null,"ext":null,"mfa":null"#,
        r#","cnf":{"jkt":"t","kid":7}"#,
        r#","amr":[]"#,
        r#","mustCheckinBy":9,"auth_time":-3"#,
    ] {
        assert!(both(&format!("{{{base}{extra}}}")).is_some(), "{extra}");
    }
}

#[test]
fn malformed_payloads_are_refused_alike() {
    let base = r#""jti":"j","sub":"u","dev":"d","type":"access","iat":1,"exp":2"#;
    let refused = [
        String::new(),
        "null".to_owned(),
        "[]".to_owned(),
        "{}".to_owned(),
        format!("{{{base}"),
        format!("{{{base}}} trailing"),
        format!("{{{base},}}"),
        // A required member missing, or of the wrong type.
        r#"{"jti":"j","sub":"u","type":"access","iat":1,"exp":2}"#.to_owned(),
        r#"{"jti":1,"sub":"u","dev":"d","type":"access","iat":1,"exp":2}"#.to_owned(),
        r#"{"jti":"j","sub":"u","dev":"d","type":"bearer","iat":1,"exp":2}"#.to_owned(),
        r#"{"jti":"j","sub":"u","dev":"d","type":"access","iat":1,"exp":"2"}"#.to_owned(),
        r#"{"jti":"j","sub":"u","dev":"d","type":"access","iat":1,"exp":2.5}"#.to_owned(),
        r#"{"jti":"j","sub":"u","dev":"d","type":"access","iat":1,"exp":99999999999999999999}"#.to_owned(),
        // A member repeated.
        format!(r#"{{{base},"jti":"k"}}"#),
        format!(r#"{{{base},"fam":"a","fam":"b"}}"#),
        // Optional members of the wrong shape.
        format!(r#"{{{base},"fam":7}}"#),
        format!(r#"{{{base},"dpk":["t"]}}"#),
        format!(r#"{{{base},"cnf":"t"}}"#),
        format!(r#"{{{base},"cnf":{{}}}}"#),
        format!(r#"{{{base},"aal":256}}"#),
        format!(r#"{{{base},"aal":-1}}"#),
        format!(r#"{{{base},"amr":"pwd"}}"#),
        format!(r#"{{{base},"amr":["pwd",1]}}"#),
        format!(r#"{{{base},"mfa":"done"}}"#),
        format!(r#"{{{base},"ext":[1]}}"#),
        // A lone surrogate is no Unicode string.
        format!(r#"{{{base},"fam":"\ud800"}}"#),
    ];
    for json in &refused {
        assert_eq!(both(json), None, "{json}");
    }
    let invalid_utf8 = [b"{\"jti\":\"".as_slice(), &[0xff, 0xfe], b"\"}"].concat();
    assert!(ClaimsRef::from_json(&invalid_utf8).is_none());
    assert!(serde_json::from_slice::<Claims>(&invalid_utf8).is_err());
}
