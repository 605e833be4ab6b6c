//! Reading an answer: status first, then a size-capped body that must be the protocol's
//! envelope, or the answer is not from the auth server.

use std::error::Error as _;
use std::time::{SystemTime, UNIX_EPOCH};

use holdfast_protocol::ErrorBody;
use holdfast_protocol::wire::Envelope;
use reqwest::header::{CONTENT_LENGTH, DATE, HeaderMap, RETRY_AFTER};
use serde::de::DeserializeOwned;

use super::Failure;
use crate::error::TransientCause;

/// The largest body read. The biggest protocol answer (a user's device list) is far
/// smaller; a bigger body is a proxy's page or a hostile peer, and must not fill memory.
pub(crate) const MAX_BODY_BYTES: usize = 256 * 1024;

/// Longest server message kept in a [`Failure::Rejected`]; the app may show it.
const MAX_MESSAGE_CHARS: usize = 500;

/// A successful answer and the server's clock when it sent it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Answer<T> {
    /// The `data` of the envelope.
    pub value: T,
    /// The server's `Date` header in milliseconds since the epoch (one-second precision),
    /// from which the session learns its clock offset.
    pub server_time_ms: Option<i64>,
}

/// Classifies a response and, if it is a success envelope, decodes its `data`.
pub(crate) async fn read_answer<T: DeserializeOwned>(
    response: reqwest::Response,
) -> Result<Answer<T>, Failure> {
    let status = response.status().as_u16();
    let server_time_ms = server_time_ms(response.headers());
    // The clock is learned only from the auth server's own JSON answers (a success or an
    // error envelope): a captive portal's page, a proxy's 5xx or 429 and any answer that is
    // not the envelope carry no `Date` the session may trust.
    let transient = |cause| Failure::Transient {
        cause,
        server_time_ms: None,
    };
    // Decided by status alone: the body of these says nothing the session can use.
    match status {
        503 => {
            let cause = match retry_after_secs(response.headers(), server_time_ms) {
                Some(retry_after_secs) => TransientCause::Unavailable { retry_after_secs },
                None => TransientCause::ServerError { status },
            };
            return Err(transient(cause));
        }
        500..=599 => return Err(transient(TransientCause::ServerError { status })),
        429 => {
            let retry_after_secs = retry_after_secs(response.headers(), server_time_ms);
            return Err(transient(TransientCause::RateLimited { retry_after_secs }));
        }
        // The request (or its upload) was too slow for the server: a slow network.
        408 => return Err(transient(TransientCause::Timeout)),
        200..=299 | 400..=499 => {}
        // 1xx and 3xx: the API never redirects, and redirects are not followed (a 307 would
        // re-send a password to wherever it points), so this is a portal or a proxy.
        _ => return Err(transient(TransientCause::NotTheServer { status })),
    }
    let body = read_capped(response, status).await?;
    let not_the_server = || transient(TransientCause::NotTheServer { status });
    if (200..300).contains(&status) {
        // A captive portal answers 200 with its HTML page: anything but the envelope is
        // "not the server", never a success.
        let envelope: Envelope<T> = serde_json::from_slice(&body).map_err(|_| not_the_server())?;
        return Ok(Answer {
            value: envelope.data,
            server_time_ms,
        });
    }
    // Only the protocol's error envelope is a rejection; a proxy's 4xx page is not. A 404
    // without it means nothing answers the auth routes at this URL: a wrong server URL or
    // route prefix, which no retry fixes.
    let Ok(error) = serde_json::from_slice::<ErrorBody>(&body) else {
        if status == 404 {
            return Err(Failure::Misconfigured {
                message: "the auth routes are not at this URL (HTTP 404 without the protocol's answer): check the server URL and the route prefix".to_owned(),
            });
        }
        return Err(not_the_server());
    };
    Err(Failure::Rejected {
        status,
        code: error.code(),
        message: truncate(&error.error),
        reason: error.reason(),
        server_time_ms,
    })
}

/// Reads the body, refusing more than [`MAX_BODY_BYTES`] before it arrives when the length
/// is declared, and as it arrives otherwise.
async fn read_capped(mut response: reqwest::Response, status: u16) -> Result<Vec<u8>, Failure> {
    let too_large = Failure::Transient {
        cause: TransientCause::NotTheServer { status },
        server_time_ms: None,
    };
    let declared = response
        .headers()
        .get(CONTENT_LENGTH)
        .and_then(|value| value.to_str().ok())
        .and_then(|value| value.parse::<u64>().ok());
    if declared.is_some_and(|length| length > MAX_BODY_BYTES as u64) {
        return Err(too_large);
    }
    let mut body = Vec::new();
    loop {
        match response.chunk().await {
            Ok(Some(chunk)) => {
                if body.len() + chunk.len() > MAX_BODY_BYTES {
                    return Err(too_large);
                }
                body.extend_from_slice(&chunk);
            }
            Ok(None) => return Ok(body),
            Err(error) => {
                return Err(Failure::Transient {
                    cause: transient_cause(&error),
                    server_time_ms: None,
                });
            }
        }
    }
}

/// The transient cause of a request that got no (complete) answer.
pub(crate) fn transient_cause(error: &reqwest::Error) -> TransientCause {
    if error.is_timeout() {
        return TransientCause::Timeout;
    }
    let what = if error.is_connect() {
        "could not connect"
    } else if error.is_body() || error.is_decode() {
        "the answer was cut off"
    } else {
        "no answer"
    };
    // The innermost cause says what happened ("Connection refused", "dns error", "connection
    // closed before message completed"); the outer layers only repeat the URL.
    let mut root = error.source();
    while let Some(next) = root.and_then(|current| current.source()) {
        root = Some(next);
    }
    match root {
        Some(root) => TransientCause::Network(format!("{what}: {root}")),
        None => TransientCause::Network(what.to_owned()),
    }
}

/// The `Date` header as milliseconds since the epoch.
pub(crate) fn server_time_ms(headers: &HeaderMap) -> Option<i64> {
    let text = headers.get(DATE)?.to_str().ok()?;
    let time = httpdate::parse_http_date(text).ok()?;
    epoch_ms(time)
}

/// `Retry-After` in seconds: delta-seconds, or an HTTP date measured from the server's own
/// clock when it sent one (the device clock may be off).
pub(crate) fn retry_after_secs(headers: &HeaderMap, server_time_ms: Option<i64>) -> Option<u64> {
    let text = headers.get(RETRY_AFTER)?.to_str().ok()?.trim();
    if let Ok(secs) = text.parse::<u64>() {
        return Some(secs);
    }
    let at_ms = epoch_ms(httpdate::parse_http_date(text).ok()?)?;
    let now_ms = server_time_ms.or_else(|| epoch_ms(SystemTime::now()))?;
    let wait_ms = at_ms.saturating_sub(now_ms).max(0);
    u64::try_from(wait_ms.div_euclid(1000)).ok()
}

fn epoch_ms(time: SystemTime) -> Option<i64> {
    let since = time.duration_since(UNIX_EPOCH).ok()?;
    i64::try_from(since.as_millis()).ok()
}

fn truncate(message: &str) -> String {
    match message.char_indices().nth(MAX_MESSAGE_CHARS) {
        Some((cut, _)) => format!("{}…", &message[..cut]),
        None => message.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use reqwest::header::HeaderValue;

    fn headers(pairs: &[(reqwest::header::HeaderName, &str)]) -> HeaderMap {
        let mut map = HeaderMap::new();
        for (name, value) in pairs {
            map.insert(name.clone(), HeaderValue::from_str(value).unwrap());
        }
        map
    }

    #[test]
    fn date_header_gives_milliseconds() {
        let map = headers(&[(DATE, "Sun, 06 Nov 1994 08:49:37 GMT")]);
        assert_eq!(server_time_ms(&map), Some(784_111_777_000));
        assert_eq!(server_time_ms(&headers(&[(DATE, "yesterday")])), None);
        assert_eq!(server_time_ms(&HeaderMap::new()), None);
    }

    #[test]
    fn retry_after_accepts_seconds_and_dates() {
        assert_eq!(
            retry_after_secs(&headers(&[(RETRY_AFTER, " 17 ")]), None),
            Some(17)
        );
        let date = headers(&[(RETRY_AFTER, "Sun, 06 Nov 1994 08:50:07 GMT")]);
        assert_eq!(retry_after_secs(&date, Some(784_111_777_000)), Some(30));
        assert_eq!(
            retry_after_secs(&date, Some(784_111_900_000)),
            Some(0),
            "in the past"
        );
        assert_eq!(retry_after_secs(&headers(&[(RETRY_AFTER, "soon")]), None), None);
        assert_eq!(retry_after_secs(&HeaderMap::new(), None), None);
    }

    #[test]
    fn long_messages_are_cut_on_a_char_boundary() {
        let long = "é".repeat(MAX_MESSAGE_CHARS + 10);
        let cut = truncate(&long);
        assert_eq!(cut.chars().count(), MAX_MESSAGE_CHARS + 1);
        assert_eq!(truncate("short"), "short");
    }
}
