"""What the exit hook does (holdfast/_exit.py), in a process of its own because it cannot be
undone: after `quiesce_for_exit`, Holdfast's threads make no call into Python (listeners
miss events, a key provider is not asked and the store reports itself unavailable, nobody
is signed out), and async calls that need none still work. Prints "ok" and exits 0.

    python quiesce_script.py SERVER_URL STORAGE_FOLDER
"""

import asyncio
import sys
import uuid

from holdfast import AuthClient, AuthEventListener, ClientConfig, KeyProvider, KeySource, quiesce_for_exit


class Counting(AuthEventListener):
    def __init__(self):
        self.events = 0

    def on_event(self, event):
        self.events += 1


class Keys(KeyProvider):
    def __init__(self):
        self.key = None
        self.calls = 0

    def load_key(self):
        self.calls += 1
        return self.key

    def store_key(self, key):
        self.calls += 1
        self.key = bytes(key)


def client(server_url, path, keys):
    return AuthClient(
        ClientConfig(server_url=server_url, storage_path=path, key_source=KeySource.PROVIDED(provider=keys))
    )


async def main(server_url, folder):
    keys = Keys()
    first = client(server_url, f"{folder}/a.db", keys)
    listener = Counting()
    subscription = first.subscribe(listener)
    await first.initialize()
    await first.sign_up(f"exit-{uuid.uuid4().hex[:10]}@example.com", "correct horse battery staple", None)
    assert listener.events > 0, "events reach the listener before"
    assert keys.calls > 0

    assert quiesce_for_exit(1000) is True
    events, key_calls = listener.events, keys.calls

    token = await first.refresh()
    assert token and listener.events == events, "no event reaches Python after quiescing"
    assert first.state().is_signed_in()

    second = client(server_url, f"{folder}/b.db", keys)
    state = await second.initialize()
    assert state.is_unavailable() and "exiting" in state.reason, state
    assert keys.calls == key_calls, "the key provider was called after quiescing"
    del subscription
    print("ok")


if __name__ == "__main__":
    asyncio.run(main(sys.argv[1], sys.argv[2]))
