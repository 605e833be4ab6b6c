"""What the generated types print: never a secret (tokens, proofs, passphrases), and
errors and events as readable text."""

import asyncio
import uuid

from holdfast import (
    AuthClient,
    AuthEvent,
    AuthState,
    ClientConfig,
    HoldfastError,
    KeyProvider,
    KeySource,
    SignOutReason,
    RequestHeaders,
    SyncCredentials,
)

PASSPHRASE = "passphrase-that-must-not-print"


def printed(value):
    return [str(value), repr(value), f"{value}", f"{value!r}", str([value]), repr({"k": value})]


def assert_hidden(value, *secrets):
    for text in printed(value):
        for secret in secrets:
            assert secret not in text, text
        assert "<redacted>" in text, text


def test_sync_credentials_print_redacted():
    credentials = SyncCredentials(
        access_token="eyJ.access-token-secret.sig", device_id="dev-1", proof="eyJ.proof-secret.sig"
    )
    assert_hidden(credentials, "access-token-secret", "proof-secret")
    assert "dev-1" in str(credentials)
    # Redaction is only in the printing: the fields keep their values.
    assert credentials.access_token == "eyJ.access-token-secret.sig"


async def signed_up_client(server, tmp_path):
    """A client of `server` (its vault under PASSPHRASE), signed up as a new user."""
    client = AuthClient(
        ClientConfig(
            server_url=server.url,
            storage_path=str(tmp_path / "client.db"),
            key_source=KeySource.PASSPHRASE(passphrase=PASSPHRASE),
        )
    )
    await client.initialize()
    await client.sign_up(f"py-{uuid.uuid4().hex[:12]}@example.com", "correct horse battery staple")
    return client


def test_request_headers_print_redacted():
    headers = RequestHeaders(authorization="DPoP eyJ.header-token-secret.sig", dpop="eyJ.header-proof-secret.sig")
    assert_hidden(headers, "header-token-secret", "header-proof-secret")
    assert headers.dpop == "eyJ.header-proof-secret.sig"


def test_real_request_headers_print_redacted(server, tmp_path):
    async def scenario():
        client = await signed_up_client(server, tmp_path)
        headers = await client.request_headers("GET", server.url + "/auth/me")
        token = headers.authorization.split(" ", 1)[1]
        assert headers.dpop is not None
        assert_hidden(headers, token, headers.dpop)

    asyncio.run(scenario())


def test_a_passphrase_key_source_and_a_config_print_redacted(tmp_path):
    source = KeySource.PASSPHRASE(passphrase=PASSPHRASE)
    assert_hidden(source, PASSPHRASE)
    config = ClientConfig(
        server_url="http://127.0.0.1:9", storage_path=str(tmp_path / "c.db"), key_source=source
    )
    assert_hidden(config, PASSPHRASE)
    assert "127.0.0.1:9" in str(config)
    keyring = KeySource.KEYRING(service="app", account="vault")
    assert "app" in str(keyring) and "vault" in repr(keyring)

    class Keys(KeyProvider):
        def load_key(self):
            return None

        def store_key(self, key):
            pass

    assert "Provided" in str(KeySource.PROVIDED(provider=Keys()))


def test_real_sync_credentials_print_redacted(server, tmp_path):
    async def scenario():
        client = await signed_up_client(server, tmp_path)
        credentials = await client.sync_credentials(server.url.replace("http://", "ws://") + "/sync")
        assert_hidden(credentials, credentials.access_token, credentials.proof)

    asyncio.run(scenario())


def test_errors_and_events_read_as_text():
    assert str(HoldfastError.InvalidCredentials()) == "invalid email or password"
    assert str(HoldfastError.InvalidInput("the email is malformed")) == "invalid input: the email is malformed"
    assert str(AuthEvent.REFRESHED()) == "Refreshed"
    state = AuthState.SIGNED_OUT(reason=SignOutReason.USER_SIGNED_OUT())
    assert str(state) == "SignedOut { reason: UserSignedOut }"


def test_error_sentences_match_the_rust_display():
    import pathlib
    import re

    from holdfast import _errors

    source = (pathlib.Path(__file__).parents[3] / "ffi" / "src" / "error.rs").read_text()
    rust = dict(
        (name, text)
        for text, name in re.findall(r'#\[error\("([^"]*)"\)\]\s*(?:///[^\n]*\n\s*)*(\w+)', source)
    )
    assert rust == _errors.SENTENCES
    assert str(HoldfastError.Refused("EMAIL_TAKEN", "taken")) == "refused by the server (EMAIL_TAKEN): taken"
    assert repr(HoldfastError.InvalidInput("bad")) == "HoldfastError.InvalidInput(message='bad')"
