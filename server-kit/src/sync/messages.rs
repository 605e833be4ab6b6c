//! The JSON messages of the sync endpoint, in both directions.

use holdfast_protocol::ErrorCode;
use serde::Serialize;
use serde_json::Value;

use crate::store::sync_items::Item;

/// What a client sends.
#[derive(Debug, PartialEq)]
pub(super) enum ClientMessage {
    /// `{"type":"auth","authToken":"…","proof":"…"?}`: Kora's handshake, as the first message.
    Auth {
        access_token: String,
        proof: Option<String>,
    },
    /// `{"type":"reauth","authToken":"…","proof":"…"?}`: renews an open connection's
    /// credentials in place (PROTOCOL 5).
    Reauth {
        access_token: String,
        proof: Option<String>,
    },
    /// `{"type":"put","key":"…","value":…}`.
    Put { key: String, value: Value },
}

/// Parses a text message; the error is a message safe to send back.
pub(super) fn parse(text: &str) -> Result<ClientMessage, &'static str> {
    let Ok(Value::Object(mut message)) = serde_json::from_str::<Value>(text) else {
        return Err("A message must be a JSON object.");
    };
    let kind = match message.get("type") {
        Some(Value::String(kind)) => kind.as_str(),
        _ => return Err("A message needs a string `type`."),
    };
    match kind {
        "auth" => {
            let (access_token, proof) =
                credentials(&mut message, "An auth message needs a string `authToken`.")?;
            Ok(ClientMessage::Auth { access_token, proof })
        }
        "reauth" => {
            let (access_token, proof) =
                credentials(&mut message, "A reauth message needs a string `authToken`.")?;
            Ok(ClientMessage::Reauth { access_token, proof })
        }
        "put" => {
            let key = match message.remove("key") {
                Some(Value::String(key)) => key,
                _ => return Err("A put message needs a string `key`."),
            };
            let value = message.remove("value").ok_or("A put message needs a `value`.")?;
            Ok(ClientMessage::Put { key, value })
        }
        _ => Err("Unknown message type."),
    }
}

/// The `authToken` and optional `proof` of an `auth` or `reauth` message.
fn credentials(
    message: &mut serde_json::Map<String, Value>,
    missing_token: &'static str,
) -> Result<(String, Option<String>), &'static str> {
    let access_token = match message.remove("authToken") {
        Some(Value::String(token)) if !token.is_empty() => token,
        _ => return Err(missing_token),
    };
    let proof = match message.remove("proof") {
        None | Some(Value::Null) => None,
        Some(Value::String(proof)) if !proof.is_empty() => Some(proof),
        Some(_) => return Err("`proof` must be a device proof string."),
    };
    Ok((access_token, proof))
}

/// What the server sends.
#[derive(Serialize)]
#[serde(tag = "type", rename_all = "camelCase", rename_all_fields = "camelCase")]
pub(super) enum ServerMessage<'a> {
    /// The connection is admitted.
    Welcome { user_id: &'a str, device_id: &'a str },
    /// A page of the user's collection, by key; `complete` on the last page.
    Snapshot { items: &'a [Item], complete: bool },
    /// One item was written (by this connection or another of the user's).
    Item(&'a Item),
    /// The access token expires at `expires_at` (ms since the epoch): renew with `reauth`
    /// before then or the connection closes with 4004.
    #[serde(rename = "reauth-required")]
    ReauthRequired { expires_at: i64 },
    /// A message was refused; the connection stays open.
    Error { code: ErrorCode, message: &'a str },
}

impl ServerMessage<'_> {
    /// The message as JSON text.
    pub(super) fn to_text(&self) -> String {
        // Serializing these types cannot fail: every map key is a string.
        serde_json::to_string(self).unwrap_or_default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn client_messages_parse() {
        assert_eq!(
            parse(r#"{"type":"auth","authToken":"t","proof":"p"}"#),
            Ok(ClientMessage::Auth {
                access_token: "t".into(),
                proof: Some("p".into())
            })
        );
        assert_eq!(
            parse(r#"{"type":"auth","authToken":"t"}"#),
            Ok(ClientMessage::Auth {
                access_token: "t".into(),
                proof: None
            })
        );
        assert_eq!(
            parse(r#"{"type":"reauth","authToken":"t","proof":"p"}"#),
            Ok(ClientMessage::Reauth {
                access_token: "t".into(),
                proof: Some("p".into())
            })
        );
        assert_eq!(
            parse(r#"{"type":"reauth","authToken":"t","proof":null}"#),
            Ok(ClientMessage::Reauth {
                access_token: "t".into(),
                proof: None
            })
        );
        assert_eq!(
            parse(r#"{"type":"put","key":"k","value":null}"#),
            Ok(ClientMessage::Put {
                key: "k".into(),
                value: Value::Null
            })
        );
    }

    #[test]
    fn malformed_messages_get_a_reason() {
        for bad in [
            "",
            "not json",
            "[]",
            "42",
            r#"{"key":"k"}"#,
            r#"{"type":7}"#,
            r#"{"type":"delete"}"#,
            r#"{"type":"auth"}"#,
            r#"{"type":"auth","authToken":""}"#,
            r#"{"type":"auth","authToken":"t","proof":5}"#,
            r#"{"type":"reauth"}"#,
            r#"{"type":"reauth","authToken":7}"#,
            r#"{"type":"reauth","authToken":"t","proof":""}"#,
            r#"{"type":"put","value":1}"#,
            r#"{"type":"put","key":1,"value":1}"#,
            r#"{"type":"put","key":"k"}"#,
        ] {
            assert!(parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn server_messages_have_the_documented_shape() {
        let item = Item {
            key: "k".into(),
            value: json!([1]),
            version: 3,
            device_id: "d".into(),
            updated_at: 9,
        };
        let text = ServerMessage::Item(&item).to_text();
        assert_eq!(
            serde_json::from_str::<Value>(&text).unwrap(),
            json!({"type":"item","key":"k","value":[1],"version":3,"deviceId":"d","updatedAt":9})
        );
        let welcome = ServerMessage::Welcome {
            user_id: "u",
            device_id: "d",
        };
        assert_eq!(
            welcome.to_text(),
            r#"{"type":"welcome","userId":"u","deviceId":"d"}"#
        );
        let error = ServerMessage::Error {
            code: ErrorCode::ValidationError,
            message: "m",
        };
        assert_eq!(
            error.to_text(),
            r#"{"type":"error","code":"VALIDATION_ERROR","message":"m"}"#
        );
        let notice = ServerMessage::ReauthRequired {
            expires_at: 1_700_000_000_000,
        };
        assert_eq!(
            notice.to_text(),
            r#"{"type":"reauth-required","expiresAt":1700000000000}"#
        );
        let snapshot = ServerMessage::Snapshot {
            items: &[],
            complete: true,
        };
        assert_eq!(
            snapshot.to_text(),
            r#"{"type":"snapshot","items":[],"complete":true}"#
        );
    }
}
