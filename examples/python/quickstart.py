"""Holdfast from Python in a few lines: sign up, call an API with the session's headers,
make sync credentials, restart without the network, and sign out.

    pip install holdfast        # or: bash bindings/python/run_tests.sh (builds the wheel)
    python examples/python/quickstart.py http://127.0.0.1:8080

The server is a running `holdfast-server` (`cargo run --release --bin holdfast-server`).
"""

import asyncio
import json
import sys
import tempfile
import urllib.request
import uuid

from holdfast import AuthClient, AuthEvent, AuthEventListener, AuthState, ClientConfig, HoldfastError, KeySource


def describe(state: AuthState) -> str:
    if isinstance(state, AuthState.SIGNED_IN):
        return f"signed in as {state.user.email}"
    if isinstance(state, AuthState.SECOND_FACTOR_REQUIRED):
        return f"waiting for a code from {state.user.email}'s authenticator app"
    if isinstance(state, AuthState.SIGNED_OUT):
        return "signed out"
    if isinstance(state, AuthState.UNAVAILABLE):
        return f"store unavailable ({state.reason})"
    return "restoring"


class PrintEvents(AuthEventListener):
    def on_event(self, event: AuthEvent) -> None:
        if isinstance(event, AuthEvent.STATE_CHANGED):
            print(f"  event: {describe(event.state)}")


def client_for(server_url: str, folder: str) -> AuthClient:
    return AuthClient(
        ClientConfig(
            server_url=server_url,
            storage_path=f"{folder}/holdfast.db",
            key_source=KeySource.PASSPHRASE(passphrase="the user's vault passphrase"),
            device_name="quickstart",
        )
    )


async def main(server_url: str) -> None:
    with tempfile.TemporaryDirectory() as folder:
        client = client_for(server_url, folder)
        subscription = client.subscribe(PrintEvents())
        state = await client.initialize()
        print(f"restored: {describe(state)}")

        email = f"quickstart-{uuid.uuid4().hex[:8]}@example.com"
        user = await client.sign_up(email, "correct horse battery staple", "Ada")
        print(f"signed up {user.email} (user {user.id})")

        token = await client.access_token()
        print(f"access token: {len(token)} characters, device {await client.device_id()}")

        # A request to the app's own backend (here the server's /auth/me): new headers for
        # every request, since a proof is good once.
        me = server_url + "/auth/me"
        headers = await client.request_headers("GET", me)
        request = urllib.request.Request(me, headers={"Authorization": headers.authorization})
        if headers.dpop is not None:
            request.add_header("DPoP", headers.dpop)
        with urllib.request.urlopen(request) as response:
            body = json.loads(response.read())
        print(f"GET /auth/me as {body['data']['email']} ({headers.authorization.split()[0]} token)")

        credentials = await client.sync_credentials(server_url + "/sync")
        print(f"sync credentials for device {credentials.device_id} with a device proof")

        devices = await client.list_devices()
        print(f"{len(devices)} device(s) registered")

        # The app restarts: the session comes back from the encrypted store, no network.
        subscription.cancel()
        restarted = client_for(server_url, folder)
        state = await restarted.initialize()
        print(f"after a restart, offline: {describe(state)}")

        await restarted.sign_out()
        print(f"signed out: {restarted.state().is_signed_out()}")
        try:
            await restarted.access_token()
        except HoldfastError.NotSignedIn:
            print("no token once signed out")


if __name__ == "__main__":
    if len(sys.argv) != 2:
        sys.exit("usage: quickstart.py SERVER_URL")
    asyncio.run(main(sys.argv[1]))
