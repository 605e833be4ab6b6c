//! Every route of the server kit, in memory: a fuzzed method, route, headers and body go
//! through `AuthService::handle`, which must answer (never panic) with a JSON body.
#![no_main]

use std::sync::OnceLock;

use bytes::Bytes;
use holdfast_server_kit::config::RateLimits;
use holdfast_server_kit::passwords::Argon2Params;
use holdfast_server_kit::{AuthRequest, AuthService, ServerConfig, Stores};
use http::{HeaderValue, Method, header};
use libfuzzer_sys::fuzz_target;

const ROUTES: &[&str] = &[
    "/auth/signup",
    "/auth/signin",
    "/auth/refresh",
    "/auth/signout",
    "/auth/me",
    "/auth/device/register",
    "/auth/device/challenge",
    "/auth/device/verify",
    "/auth/devices",
    "/auth/devices/dev-1",
    "/auth/nowhere",
];

fn runtime() -> &'static tokio::runtime::Runtime {
    static RUNTIME: OnceLock<tokio::runtime::Runtime> = OnceLock::new();
    RUNTIME.get_or_init(|| {
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("runtime")
    })
}

fn service() -> &'static AuthService {
    static SERVICE: OnceLock<AuthService> = OnceLock::new();
    SERVICE.get_or_init(|| {
        let mut config = ServerConfig::new(vec!["fuzzing-secret-of-at-least-thirty-two-bytes!".to_owned()]);
        // The cheapest hash Argon2 allows: the fuzzer explores parsing, not hashing.
        config.argon2 = Argon2Params {
            memory_kib: 8,
            iterations: 1,
            parallelism: 1,
        };
        config.rate_limits = RateLimits::OFF;
        config.ip_block = None;
        AuthService::new(config, Stores::memory()).expect("service")
    })
}

fuzz_target!(|data: &[u8]| {
    // Byte 0: method and route; then header values separated by newlines; then the body.
    let Some((&selector, rest)) = data.split_first() else {
        return;
    };
    let method = [Method::GET, Method::POST, Method::DELETE, Method::PUT][usize::from(selector & 3)].clone();
    let path = ROUTES[usize::from(selector >> 2) % ROUTES.len()];
    let mut parts = rest.splitn(3, |&b| b == b'\n');
    let authorization = parts.next().unwrap_or_default();
    let dpop = parts.next().unwrap_or_default();
    let body = parts.next().unwrap_or_default();
    let mut request = AuthRequest::new(method, path).with_json(Bytes::copy_from_slice(body));
    if let Ok(value) = HeaderValue::from_bytes(authorization)
        && !authorization.is_empty()
    {
        request.headers.insert(header::AUTHORIZATION, value);
    }
    if let Ok(value) = HeaderValue::from_bytes(dpop)
        && !dpop.is_empty()
    {
        request.headers.insert("dpop", value);
    }
    let response = runtime().block_on(service().handle(request));
    let status = response.status.as_u16();
    assert!((200..600).contains(&status));
    // 5xx here would be a bug: the memory store never fails.
    assert!(status < 500, "{path} answered {status}");
});
