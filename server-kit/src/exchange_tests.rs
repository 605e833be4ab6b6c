use super::*;

#[test]
fn content_type_essence() {
    let mut headers = HeaderMap::new();
    assert!(!has_json_content_type(&headers));
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json; charset=utf-8"),
    );
    assert!(has_json_content_type(&headers));
    headers.insert(header::CONTENT_TYPE, HeaderValue::from_static("text/plain"));
    assert!(!has_json_content_type(&headers));
}

#[test]
fn bearer_parsing() {
    let mut headers = HeaderMap::new();
    headers.insert(header::AUTHORIZATION, HeaderValue::from_static("bearer abc"));
    assert_eq!(bearer_token(&headers), Some("abc"));
    headers.insert(header::AUTHORIZATION, HeaderValue::from_static("Basic abc"));
    assert_eq!(bearer_token(&headers), None);
    headers.insert(header::AUTHORIZATION, HeaderValue::from_static("Bearer "));
    assert_eq!(bearer_token(&headers), None);
}

#[test]
fn rate_limited_rounds_up_to_whole_seconds() {
    assert_eq!(ApiError::rate_limited(1).retry_after_secs, Some(1));
    assert_eq!(ApiError::rate_limited(1001).retry_after_secs, Some(2));
    let response = ApiError::rate_limited(5000).to_response();
    assert_eq!(response.status, StatusCode::TOO_MANY_REQUESTS);
    assert_eq!(response.headers.get(header::RETRY_AFTER).unwrap(), "5");
}

fn host(value: &'static str) -> HeaderMap {
    let mut headers = HeaderMap::new();
    headers.insert(header::HOST, HeaderValue::from_static(value));
    headers
}

#[test]
fn the_request_url_comes_from_the_host_header() {
    let url = |value| request_url(None, &host(value), "/auth/me");
    assert_eq!(
        url("127.0.0.1:8080").as_deref(),
        Some("http://127.0.0.1:8080/auth/me")
    );
    assert_eq!(
        url("API.Example.com:80").as_deref(),
        Some("http://api.example.com/auth/me")
    );
    assert_eq!(url("[::1]:9000").as_deref(), Some("http://[::1]:9000/auth/me"));
    assert_eq!(url("evil.example/x?"), None);
    assert_eq!(url("user@host"), None);
    assert_eq!(request_url(None, &HeaderMap::new(), "/auth/me"), None);
}

#[test]
fn a_public_base_url_wins_over_the_host_header() {
    let url = |base| request_url(Some(base), &host("internal:8080"), "/auth/me");
    assert_eq!(
        url("https://api.example.com").as_deref(),
        Some("https://api.example.com/auth/me")
    );
    assert_eq!(
        url("https://API.example.com:443/").as_deref(),
        Some("https://api.example.com/auth/me")
    );
    assert_eq!(
        url("https://example.com/Backend/").as_deref(),
        Some("https://example.com/Backend/auth/me")
    );
    assert_eq!(
        url("http://example.com:8443").as_deref(),
        Some("http://example.com:8443/auth/me")
    );
    assert_eq!(
        request_url(Some("https://a.example"), &HeaderMap::new(), "/auth/me").as_deref(),
        Some("https://a.example/auth/me")
    );
}
