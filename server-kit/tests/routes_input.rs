//! The envelope and transport rules of PROTOCOL section 1 over loopback HTTP, and hostile
//! input: no request may make the server answer 500 or drop the connection (every reply is
//! read through `Reply::read`, which fails the test on either).

mod support;

use reqwest::Method;
use serde_json::json;
use support::{PASSWORD, Reply, TestServer, email};

const NOT_FOUND: &str = r#"{"error":"Not found","code":"NOT_FOUND"}"#;

async fn raw(
    server: &TestServer,
    method: Method,
    path: &str,
    content_type: &str,
    body: impl Into<Vec<u8>>,
) -> Reply {
    let body: Vec<u8> = body.into();
    Reply::read(
        server
            .request(method, path)
            .header("content-type", content_type)
            .body(body),
    )
    .await
}

#[tokio::test(flavor = "multi_thread")]
async fn unknown_routes_and_wrong_methods_are_a_json_404() {
    let server = TestServer::start(|_| {}).await;
    let cases = [
        (Method::GET, "/auth/signin"),
        (Method::POST, "/auth/me"),
        (Method::PUT, "/auth/signup"),
        (Method::GET, "/auth/device/phone"),
        (Method::DELETE, "/auth/device/"),
        (Method::DELETE, "/auth/device/a/b"),
        (Method::POST, "/auth/nope"),
        (Method::POST, "/auth"),
        (Method::POST, "/auth/"),
        (Method::POST, "/auth/signup/"),
        (Method::POST, "/authsignup"),
        (Method::GET, "/"),
        (Method::GET, "/elsewhere/me"),
    ];
    for (method, path) in cases {
        let reply = Reply::read(server.request(method.clone(), path).json(&json!({}))).await;
        assert_eq!(
            (reply.status, reply.text.as_str()),
            (404, NOT_FOUND),
            "{method} {path}"
        );
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn the_route_prefix_is_configurable() {
    let server = TestServer::start(|config| config.route_prefix = "/api/v1/auth".into()).await;
    let body = json!({ "email": email("prefix"), "password": PASSWORD });
    server
        .post("/api/v1/auth/signup", body.clone())
        .await
        .expect_status(201);
    let reply = server.post("/auth/signup", body).await;
    assert_eq!((reply.status, reply.text.as_str()), (404, NOT_FOUND));
}

#[tokio::test(flavor = "multi_thread")]
async fn bodies_must_be_json_objects_sent_as_json() {
    let server = TestServer::start(|_| {}).await;
    let valid = json!({ "email": email("ct"), "password": PASSWORD }).to_string();
    let cases: [(&str, &[u8]); 8] = [
        ("text/plain", valid.as_bytes()),
        (
            "application/x-www-form-urlencoded",
            b"email=a%40b.co&password=12345678",
        ),
        ("", valid.as_bytes()),
        ("application/json", b"{\"email\": "),
        ("application/json", b"not json"),
        ("application/json", b""),
        ("application/json", b"[]"),
        ("application/json", b"\xff\xfe{}"),
    ];
    for (content_type, body) in cases {
        let reply = raw(&server, Method::POST, "/auth/signup", content_type, body).await;
        reply.expect_error(400, "VALIDATION_ERROR");
    }
    // A charset parameter and a differently cased media type are fine.
    raw(
        &server,
        Method::POST,
        "/auth/signup",
        "Application/JSON; charset=utf-8",
        valid,
    )
    .await
    .expect_status(201);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_wrong_shape_is_refused_without_echoing_the_input() {
    let server = TestServer::start(|_| {}).await;
    let secret = "s3cret-value-that-must-not-echo";
    let cases = [
        json!({ "email": email("shape"), "password": 98_765_432_123_u64 }),
        json!({ "email": email("shape"), "password": [secret] }),
        json!({ "email": email("shape"), "password": secret, "deviceId": 5 }),
        json!({ "email": secret, "password": { "nested": secret } }),
        json!([secret, secret]),
        json!(secret),
    ];
    for body in cases {
        for path in ["/auth/signup", "/auth/signin"] {
            let reply = server.post(path, body.clone()).await;
            assert_eq!(
                (reply.status, reply.code()),
                (400, Some("VALIDATION_ERROR")),
                "{path} {body}"
            );
            for leaked in [secret, "98765432123"] {
                assert!(
                    !reply.text.contains(leaked),
                    "{path} echoed the input: {}",
                    reply.text
                );
            }
        }
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn a_json_array_is_not_a_request_body() {
    let server = TestServer::start(|_| {}).await;
    let address = email("array");
    let session = server.sign_up(&address).await;
    // serde reads a struct from an array of its members in order; the protocol does not.
    server
        .post("/auth/signin", json!([address, PASSWORD]))
        .await
        .expect_error(400, "VALIDATION_ERROR");
    server
        .post("/auth/refresh", json!([session.refresh]))
        .await
        .expect_error(400, "VALIDATION_ERROR");
    let reply = server
        .post_auth("/auth/signout", &session.access, json!([session.refresh]))
        .await;
    reply.expect_error(400, "VALIDATION_ERROR");
    server.me(&session.access).await.expect_status(200);
}

#[tokio::test(flavor = "multi_thread")]
async fn an_oversized_body_is_a_413() {
    let server = TestServer::start(|config| config.max_body_bytes = 1024).await;
    let padding = "x".repeat(2048);
    let body = json!({ "email": email("big"), "password": PASSWORD, "name": padding });
    let reply = server.post("/auth/signup", body).await;
    reply.expect_error(413, "VALIDATION_ERROR");
    // The unread body leaves the connection unusable: the client is told not to reuse it
    // (otherwise its next request on that connection is dropped).
    assert_eq!(reply.header("connection"), Some("close"));
    // Just under the limit is processed normally.
    let body = json!({ "email": email("small"), "password": PASSWORD, "name": "x".repeat(900) });
    server.post("/auth/signup", body).await.expect_status(201);
}

/// Sends raw bytes over a fresh connection and reads until the server closes it.
async fn raw_exchange(server: &TestServer, request: String) -> String {
    let addr = server.addr;
    support::blocking(move || {
        use std::io::{Read, Write};
        let mut stream = std::net::TcpStream::connect(addr).expect("connect");
        stream
            .set_read_timeout(Some(std::time::Duration::from_secs(10)))
            .expect("timeout");
        stream.write_all(request.as_bytes()).expect("write");
        let mut answer = String::new();
        stream
            .read_to_string(&mut answer)
            .expect("the server answers and closes");
        answer
    })
    .await
}

#[tokio::test(flavor = "multi_thread")]
async fn an_oversized_chunked_body_is_a_413_too() {
    // Without a Content-Length the limit must hold while the body streams in.
    let server = TestServer::start(|config| config.max_body_bytes = 1024).await;
    let chunk = "x".repeat(1000);
    let mut request = String::from(
        "POST /auth/signup HTTP/1.1\r\nHost: test\r\nContent-Type: application/json\r\n\
         Transfer-Encoding: chunked\r\nConnection: close\r\n\r\n",
    );
    for _ in 0..3 {
        request.push_str(&format!("{:x}\r\n{chunk}\r\n", chunk.len()));
    }
    request.push_str("0\r\n\r\n");
    let answer = raw_exchange(&server, request).await;
    assert!(answer.starts_with("HTTP/1.1 413 "), "{answer}");
    assert!(
        answer.ends_with(r#"{"error":"Request body exceeds 1024 bytes.","code":"VALIDATION_ERROR"}"#),
        "{answer}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn hostile_input_never_fails_the_server() {
    let server = TestServer::start(|_| {}).await;
    let session = server.sign_up(&email("fuzz")).await;
    let deep = format!("{}{}", "[".repeat(100_000), "]".repeat(100_000));
    let huge = "é".repeat(20_000);
    let bodies: Vec<Vec<u8>> = vec![
        b"".to_vec(),
        b"null".to_vec(),
        b"{}".to_vec(),
        b"1e999".to_vec(),
        b"\"\\ud800\"".to_vec(),
        deep.as_bytes()[..60_000].to_vec(),
        json!({ "email": "\u{0}@x.co", "password": "\u{0}".repeat(8), "deviceId": "\u{0}" }).to_string().into(),
        json!({ "email": huge, "password": huge, "name": huge, "deviceId": huge }).to_string().into(),
        json!({ "email": "a@b.co", "password": PASSWORD, "deviceId": "d", "devicePublicKey": huge }).to_string().into(),
        json!({ "refreshToken": huge, "deviceId": huge, "challenge": huge, "signature": huge }).to_string().into(),
        json!({ "refreshToken": 1, "deviceId": null, "challenge": [], "signature": {} }).to_string().into(),
        json!({ "deviceId": "d", "publicKey": "{\"kty\":\"EC\",\"crv\":\"P-256\",\"x\":1,\"y\":null}", "name": "n" })
            .to_string()
            .into(),
    ];
    let routes = [
        (Method::POST, "/auth/signup"),
        (Method::POST, "/auth/signin"),
        (Method::POST, "/auth/refresh"),
        (Method::POST, "/auth/signout"),
        (Method::GET, "/auth/me"),
        (Method::GET, "/auth/devices"),
        (Method::POST, "/auth/device/register"),
        (Method::POST, "/auth/device/challenge"),
        (Method::POST, "/auth/device/verify"),
        (Method::DELETE, "/auth/device/x"),
    ];
    let bearers = [None, Some(session.access.as_str()), Some(huge.as_str())];
    for (method, path) in &routes {
        for body in &bodies {
            for bearer in bearers {
                let mut request = server
                    .request(method.clone(), path)
                    .header("content-type", "application/json")
                    .body(body.clone());
                if let Some(token) = bearer {
                    request = request.bearer_auth(token);
                }
                let reply = Reply::read(request).await;
                assert!(reply.status < 500, "{method} {path}: {}", reply.text);
            }
        }
    }
    // The fuzzing signed that session out (an empty sign-out body is valid); take another.
    let session = server
        .sign_in_with(json!({ "email": session.user["email"], "password": PASSWORD }))
        .await;
    let paths = [
        "/auth/device/%00",
        "/auth/device/%",
        "/auth/device/%e2%82",
        "/auth/device/%C3%A9",
    ];
    for path in paths
        .iter()
        .map(|p| p.to_string())
        .chain([format!("/auth/device/{}", "a".repeat(4000))])
    {
        let reply = Reply::read(server.request(Method::DELETE, &path).bearer_auth(&session.access)).await;
        reply.expect_error(404, "DEVICE_NOT_FOUND");
    }
    let odd_headers: [&[u8]; 3] = [b"Bearer \xff\xfe", b"Bearer a b c", b"bEaReR   "];
    for header in odd_headers {
        let request = server
            .request(Method::GET, "/auth/me")
            .header("authorization", header);
        Reply::read(request).await.expect_error(401, "TOKEN_INVALID");
    }
    // The account survived all of it.
    server.me(&session.access).await.expect_status(200);
}
