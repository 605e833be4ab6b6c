//! What the fuzz targets in `fuzz/` reach that is not public API.

use holdfast_protocol::wire::{
    AuthSession, ChallengeResponse, Device, DeviceRegistration, TokenPair, VerifyResponse,
};
use serde::de::DeserializeOwned;

use crate::session::fuzz_accepts_tokens;
use crate::transport::read_answer;

/// Reads an answer of `status` with an optional `Date` header and `body` as every answer
/// type the client expects, then puts the tokens of a successful token answer through the
/// checks that run before anything is stored.
pub fn answer(status: u16, date: Option<&[u8]>, body: &[u8]) {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .build()
        .expect("a current-thread runtime");
    runtime.block_on(async {
        if let Ok(Some(session)) = read::<AuthSession>(status, date, body).await {
            fuzz_accepts_tokens(&session.tokens.access_token, &session.tokens.refresh_token);
        }
        if let Ok(Some(pair)) = read::<TokenPair>(status, date, body).await {
            fuzz_accepts_tokens(&pair.access_token, &pair.refresh_token);
        }
        let _ = read::<VerifyResponse>(status, date, body).await;
        let _ = read::<ChallengeResponse>(status, date, body).await;
        let _ = read::<DeviceRegistration>(status, date, body).await;
        let _ = read::<Vec<Device>>(status, date, body).await;
    });
}

async fn read<T: DeserializeOwned>(status: u16, date: Option<&[u8]>, body: &[u8]) -> Result<Option<T>, ()> {
    let mut builder = http::Response::builder().status(status);
    if let Some(date) = date
        && let Ok(value) = http::HeaderValue::from_bytes(date)
    {
        builder = builder
            .header(http::header::DATE, value.clone())
            .header(http::header::RETRY_AFTER, value);
    }
    let Ok(response) = builder.body(body.to_vec()) else {
        return Err(());
    };
    Ok(read_answer::<T>(reqwest::Response::from(response))
        .await
        .ok()
        .map(|answer| answer.value))
}
