"""The `holdfast` Python package against a real holdfast-server: sessions, offline restore,
devices and proofs, a Python key provider, events, and errors as exceptions."""

import asyncio
import http.server
import json
import os
import threading
import urllib.error
import urllib.request
import uuid

import pytest

from holdfast import (
    AuthClient,
    AuthEvent,
    AuthEventListener,
    AuthState,
    ClientConfig,
    HoldfastError,
    KeyProvider,
    KeySource,
    SignInOutcome,
    SignOutReason,
    SyncRefusal,
)

PASSWORD = "correct horse battery staple"


def run(coroutine):
    return asyncio.run(coroutine)


def new_email():
    return f"py-{uuid.uuid4().hex[:12]}@example.com"


def passphrase_client(server_url, storage_path, passphrase="vault passphrase", **options):
    return AuthClient(
        ClientConfig(
            server_url=server_url,
            storage_path=str(storage_path),
            key_source=KeySource.PASSPHRASE(passphrase=passphrase),
            **options,
        )
    )


def is_jwt(token):
    return isinstance(token, str) and token.count(".") == 2


def test_sign_up_sign_in_and_access_token(server, tmp_path):
    async def scenario():
        client = passphrase_client(server.url, tmp_path / "client.db", device_name="pytest")
        state = await client.initialize()
        assert state.is_signed_out()
        assert state.reason.is_no_stored_session()

        email = new_email()
        user = await client.sign_up(email, PASSWORD, "Ada")
        assert user.email == email and user.name == "Ada"
        assert client.state().is_signed_in()
        assert client.current_user() == user
        first = await client.access_token()
        assert is_jwt(first)
        # A valid token is answered from memory: the same one.
        assert await client.access_token() == first

        await client.sign_out()
        assert client.state() == AuthState.SIGNED_OUT(reason=SignOutReason.USER_SIGNED_OUT())
        with pytest.raises(HoldfastError.NotSignedIn):
            await client.access_token()

        again = await client.sign_in(email, PASSWORD)
        assert again == SignInOutcome.SIGNED_IN(user=again.user)
        assert again.user.id == user.id
        assert is_jwt(await client.access_token())

        with pytest.raises(HoldfastError.InvalidCredentials):
            await client.sign_in(email, "not the password")
        with pytest.raises(HoldfastError.Refused) as taken:
            await client.sign_up(email, PASSWORD)
        assert taken.value.code == "EMAIL_TAKEN"

    run(scenario())


def test_a_fresh_token_is_answered_without_a_turn_of_the_event_loop(server, tmp_path):
    async def scenario():
        client = passphrase_client(server.url, tmp_path / "client.db")
        assert client.fresh_access_token() is None, "before initialize()"
        await client.initialize()
        assert client.fresh_access_token() is None, "signed out"
        await client.sign_up(new_email(), PASSWORD)
        token = client.fresh_access_token()
        assert is_jwt(token)
        # The coroutine finishes at its first step: it never waits on the loop.
        coroutine = client.access_token()
        with pytest.raises(StopIteration) as finished:
            coroutine.send(None)
        assert finished.value.value == token
        await client.sign_out()
        assert client.fresh_access_token() is None
        # Without a fresh token the Rust future answers, errors included.
        with pytest.raises(HoldfastError.NotSignedIn):
            await client.access_token()

    run(scenario())


def test_a_second_client_restores_the_session_while_the_server_is_down(own_server, tmp_path):
    storage = tmp_path / "client.db"

    async def sign_up():
        client = passphrase_client(own_server.url, storage)
        await client.initialize()
        user = await client.sign_up(new_email(), PASSWORD)
        return user, await client.access_token()

    user, token = run(sign_up())
    own_server.stop()

    async def restore_offline():
        client = passphrase_client(own_server.url, storage, connect_timeout_ms=2000, request_timeout_ms=2000)
        state = await client.initialize()
        assert state.is_signed_in(), state
        assert state.user.id == user.id
        # Still valid, so no network needed.
        assert await client.access_token() == token
        # A server call fails as transient: the session is kept.
        with pytest.raises(HoldfastError.Transient):
            await client.list_devices()
        assert client.state().is_signed_in()

    run(restore_offline())


def test_device_registration_proofs_and_bearer_calls(server, tmp_path):
    async def scenario():
        client = passphrase_client(server.url, tmp_path / "client.db")
        await client.initialize()
        user = await client.sign_up(new_email(), PASSWORD)

        device_id = await client.device_id()
        device = await client.register_device("pytest laptop")
        assert device.id == device_id and device.user_id == user.id
        # Sign-up already registered this device; registering again keeps its record.
        assert not device.revoked
        assert '"kty"' in device.public_key
        assert len(await client.device_thumbprint()) == 43

        proof = await client.device_proof("GET", server.url + "/auth/devices")
        assert is_jwt(proof)
        sync_url = server.url.replace("http://", "ws://") + "/sync"
        credentials = await client.sync_credentials(sync_url)
        assert credentials.device_id == device_id
        assert is_jwt(credentials.access_token) and is_jwt(credentials.proof)

        # Bearer calls carry device proofs; the server accepts them.
        devices = await client.list_devices()
        assert device_id in [d.id for d in devices]

        with pytest.raises(HoldfastError.InvalidInput):
            await client.sign_challenge("not a challenge")
        with pytest.raises(HoldfastError.InvalidInput):
            await client.device_proof("GET /x", server.url)

    run(scenario())


class MemoryKeys(KeyProvider):
    """The app's key keeper, in Python (a real app would use its keychain)."""

    def __init__(self):
        self.key = None
        self.stores = 0

    def load_key(self):
        return self.key

    def store_key(self, key):
        self.stores += 1
        self.key = bytes(key)


class LockedKeychain(KeyProvider):
    def load_key(self):
        raise HoldfastError.StorageUnavailable("the keychain is locked")

    def store_key(self, key):
        raise HoldfastError.StorageUnavailable("the keychain is locked")


class BuggyKeychain(KeyProvider):
    def load_key(self):
        raise ValueError("a bug in the app")

    def store_key(self, key):
        raise ValueError("a bug in the app")


def provided_client(server_url, storage_path, provider):
    return AuthClient(
        ClientConfig(
            server_url=server_url,
            storage_path=str(storage_path),
            key_source=KeySource.PROVIDED(provider=provider),
        )
    )


def test_a_python_key_provider_keeps_the_vault_key(server, tmp_path):
    storage = tmp_path / "client.db"
    keys = MemoryKeys()

    async def scenario():
        client = provided_client(server.url, storage, keys)
        assert (await client.initialize()).is_signed_out()
        assert keys.stores == 1 and len(keys.key) == 32
        user = await client.sign_up(new_email(), PASSWORD)

        again = provided_client(server.url, storage, keys)
        state = await again.initialize()
        assert state.is_signed_in() and state.user.id == user.id
        assert keys.stores == 1

        # A locked keychain or a provider bug: unavailable, never signed out, no crash.
        for provider in (LockedKeychain(), BuggyKeychain()):
            blocked = provided_client(server.url, storage, provider)
            state = await blocked.initialize()
            assert state.is_unavailable(), state
            # The store cannot be read now: that is what the app is told, not a sign-out.
            with pytest.raises(HoldfastError.StorageUnavailable):
                await blocked.access_token()
            with pytest.raises(HoldfastError.StorageUnavailable):
                await blocked.sign_in(new_email(), PASSWORD)
        locked = await provided_client(server.url, storage, LockedKeychain()).initialize()
        assert "keychain is locked" in locked.reason

    run(scenario())


class Recorder(AuthEventListener):
    """Collects events; called on a Holdfast thread, hence the lock."""

    def __init__(self):
        self.lock = threading.Lock()
        self.events = []

    def on_event(self, event):
        with self.lock:
            self.events.append(event)

    def states(self):
        with self.lock:
            return [e.state for e in self.events if e.is_state_changed()]


class Throwing(AuthEventListener):
    def on_event(self, event):
        raise RuntimeError("a listener bug")


def test_listeners_receive_state_changes_until_cancelled(server, tmp_path):
    async def scenario():
        client = passphrase_client(server.url, tmp_path / "client.db")
        recorder = Recorder()
        subscription = client.subscribe(recorder)
        # Kept alive on purpose: dropping a handle ends its subscription.
        throwing = client.subscribe(Throwing())  # harms nobody
        await client.initialize()
        user = await client.sign_up(new_email(), PASSWORD)
        await client.sign_out()

        states = recorder.states()
        assert states[0] == AuthState.SIGNED_OUT(reason=SignOutReason.NO_STORED_SESSION())
        assert any(s.is_signed_in() and s.user.id == user.id for s in states), states
        assert states[-1] == AuthState.SIGNED_OUT(reason=SignOutReason.USER_SIGNED_OUT())

        subscription.cancel()
        throwing.cancel()
        seen = len(recorder.events)
        await client.sign_in(user.email, PASSWORD)
        assert client.state().is_signed_in()
        assert len(recorder.events) == seen

    run(scenario())


def test_bad_input_raises_exceptions_not_crashes(server, tmp_path):
    with pytest.raises(HoldfastError.InvalidInput):
        passphrase_client("", tmp_path / "client.db")
    with pytest.raises(HoldfastError.InvalidInput):
        passphrase_client(server.url, "")
    with pytest.raises(HoldfastError) as kind:
        passphrase_client("not a url", tmp_path / "client.db")
    assert type(kind.value).__name__ == "InvalidInput"

    async def unwritable_storage():
        not_a_folder = tmp_path / "a-file"
        not_a_folder.write_text("")
        client = passphrase_client(server.url, not_a_folder / "client.db")
        state = await client.initialize()
        assert state.is_unavailable(), state
        with pytest.raises(HoldfastError.StorageUnavailable):
            await client.sign_in(new_email(), PASSWORD)

    async def wrong_passphrase():
        storage = tmp_path / "vault.db"
        owner = passphrase_client(server.url, storage, passphrase="the right one")
        await owner.initialize()
        email = new_email()
        await owner.sign_up(email, PASSWORD)

        intruder = passphrase_client(server.url, storage, passphrase="a wrong one")
        state = await intruder.initialize()
        assert state.is_unavailable() and "passphrase" in state.reason, state
        with pytest.raises(HoldfastError.WrongPassphrase):
            await intruder.access_token()
        with pytest.raises(HoldfastError.WrongPassphrase):
            await intruder.sign_in(email, PASSWORD)
        with pytest.raises(HoldfastError.WrongPassphrase):
            await owner.change_passphrase("a wrong one", "a new one")
        assert (await owner.access_token()).count(".") == 2

    run(unwritable_storage())
    run(wrong_passphrase())


def test_a_call_before_initialize_is_a_usage_error(server, tmp_path):
    async def scenario():
        client = passphrase_client(server.url, tmp_path / "client.db")
        with pytest.raises(HoldfastError.Usage) as error:
            await client.sign_in(new_email(), PASSWORD)
        assert str(error.value) == "usage error: call initialize() first"
        with pytest.raises(HoldfastError.Usage):
            await client.access_token()
        await client.initialize()
        with pytest.raises(HoldfastError.NotSignedIn):
            await client.access_token()

    run(scenario())


def test_error_kinds_are_subclasses_of_one_exception():
    for kind in ("InvalidInput", "InvalidCredentials", "Transient", "SignInRequired", "Refused",
                 "NotSignedIn", "StorageUnavailable", "WrongPassphrase", "Usage", "Protocol"):
        assert issubclass(getattr(HoldfastError, kind), HoldfastError)
        assert issubclass(getattr(HoldfastError, kind), Exception)
    assert os.environ.get("HOLDFAST_SERVER_BIN")


def test_the_quickstart_runs_against_a_server(server):
    import subprocess
    import sys
    from pathlib import Path

    quickstart = Path(__file__).resolve().parents[3] / "examples" / "python" / "quickstart.py"
    # Ten times: before holdfast/_exit.py, CPython aborted at exit ("FATAL: exception not
    # rethrown") in 1 to 8 runs of 40 of this script, when its last call's completion was
    # still on its way back from Holdfast's thread as the interpreter finalized.
    for attempt in range(10):
        result = subprocess.run(
            [sys.executable, str(quickstart), server.url], capture_output=True, text=True, timeout=120
        )
        assert result.returncode == 0, f"run {attempt}: exit {result.returncode}\n{result.stderr}"
        for expected in (
            "signed up",
            "sync credentials for device",
            "after a restart, offline: signed in as",
            "signed out: True",
        ):
            assert expected in result.stdout, result.stdout



def test_after_quiescing_no_native_thread_calls_into_python(server, tmp_path):
    import subprocess
    import sys
    from pathlib import Path

    script = Path(__file__).resolve().parent / "quiesce_script.py"
    result = subprocess.run(
        [sys.executable, str(script), server.url, str(tmp_path)], capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "ok", result.stdout


def token_claims(token):
    import base64
    import json

    payload = token.split(".")[1]
    return json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))


def test_tokens_are_bound_unless_bind_tokens_is_off(server, tmp_path):
    async def scenario():
        bound = passphrase_client(server.url, tmp_path / "bound.db")
        await bound.initialize()
        await bound.sign_up(new_email(), PASSWORD)
        assert "jkt" in token_claims(await bound.access_token()).get("cnf", {})

        bearer = passphrase_client(server.url, tmp_path / "bearer.db", bind_tokens=False)
        await bearer.initialize()
        await bearer.sign_up(new_email(), PASSWORD)
        assert "cnf" not in token_claims(await bearer.access_token())

    run(scenario())


def get_json(url, headers):
    """GETs `url` with `headers`: (status, parsed body)."""
    request = urllib.request.Request(url, headers=headers)
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as error:
        return error.code, json.loads(error.read() or b"null")


def as_headers(request_headers):
    headers = {"Authorization": request_headers.authorization}
    if request_headers.dpop is not None:
        headers["DPoP"] = request_headers.dpop
    return headers


def test_request_headers_open_the_apps_backend_with_one_token(server, tmp_path):
    async def scenario():
        me = server.url + "/auth/me"
        email = new_email()
        bound = passphrase_client(server.url, tmp_path / "bound.db")
        await bound.initialize()
        await bound.sign_up(email, PASSWORD)
        headers = await bound.request_headers("GET", me)
        assert headers.authorization.startswith("DPoP ")
        assert headers.dpop is not None
        status, body = get_json(me, as_headers(headers))
        assert status == 200 and body["data"]["email"] == email
        # A proof is good once: the same headers again are refused, new ones work.
        assert get_json(me, as_headers(headers))[0] == 401
        assert get_json(me, as_headers(await bound.request_headers("GET", me)))[0] == 200

        bearer = passphrase_client(server.url, tmp_path / "bearer.db", bind_tokens=False)
        await bearer.initialize()
        await bearer.sign_up(new_email(), PASSWORD)
        headers = await bearer.request_headers("GET", me)
        assert headers.authorization.startswith("Bearer ") and headers.dpop is None
        assert get_json(me, as_headers(headers))[0] == 200

    run(scenario())


def test_sync_renewal_and_a_sync_refusal(server, tmp_path):
    async def scenario():
        sync_url = server.url + "/sync"
        client = passphrase_client(server.url, tmp_path / "client.db")
        await client.initialize()
        await client.sign_up(new_email(), PASSWORD)
        current = await client.access_token()
        expires_ms = token_claims(current)["exp"] * 1000
        # An earlier expiry: the token in hand outlives it.
        early = await client.sync_renewal(sync_url, expires_ms - 60_000)
        assert early.access_token == current
        # The token in hand's own expiry: a newer token (the server stamps whole seconds).
        await asyncio.sleep(1.1)
        renewal = await client.sync_renewal(sync_url, expires_ms)
        assert renewal.access_token != current
        assert token_claims(renewal.access_token)["exp"] * 1000 > expires_ms
        assert renewal.proof.count(".") == 2

        # A close that is no verdict changes nothing; 4001 signs the device out at once.
        await client.handle_sync_refusal(SyncRefusal.CLOSE(code=1001, reason=""))
        assert client.state().is_signed_in()
        await client.handle_sync_refusal(SyncRefusal.HTTP(status=429, code="QUOTA_EXCEEDED"))
        assert client.state().is_signed_in()
        await client.handle_sync_refusal(SyncRefusal.CLOSE(code=4001, reason="DEVICE_REVOKED"))
        assert client.state() == AuthState.SIGNED_OUT(reason=SignOutReason.DEVICE_REVOKED())

    run(scenario())


class NotFoundPage(http.server.BaseHTTPRequestHandler):
    """Answers every request with an HTML 404, as a web server without the auth routes."""

    def do_POST(self):
        page = b"<html><body><h1>404 Not Found</h1></body></html>"
        self.send_response(404)
        self.send_header("Content-Type", "text/html")
        self.send_header("Content-Length", str(len(page)))
        self.end_headers()
        self.wfile.write(page)

    do_GET = do_POST

    def log_message(self, *args):
        pass


def test_a_route_prefix_and_a_configuration_error(server, tmp_path):
    async def scenario():
        # The routes where the server mounts them: the default prefix, said explicitly.
        client = passphrase_client(server.url, tmp_path / "client.db", route_prefix="/auth", token_deadline_ms=5_000)
        await client.initialize()
        await client.sign_up(new_email(), PASSWORD)

        # Nothing but HTML 404 pages where the client looks: a configuration error.
        page_server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), NotFoundPage)
        thread = threading.Thread(target=page_server.serve_forever, daemon=True)
        thread.start()
        try:
            url = f"http://127.0.0.1:{page_server.server_address[1]}"
            lost = passphrase_client(url, tmp_path / "lost.db", route_prefix="/api/auth")
            await lost.initialize()
            with pytest.raises(HoldfastError.Configuration) as error:
                await lost.sign_in(new_email(), PASSWORD)
            assert str(error.value).startswith("configuration error: ")
        finally:
            page_server.shutdown()
            page_server.server_close()

    run(scenario())
