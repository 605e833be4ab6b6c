"""Events as an async iterator, against a real server."""

import asyncio
import uuid

from holdfast import AuthClient, AuthEvent, AuthEvents, AuthState, ClientConfig, KeySource, SignOutReason


def test_events_as_an_async_iterator(server, tmp_path):
    async def scenario():
        client = AuthClient(
            ClientConfig(
                server_url=server.url,
                storage_path=str(tmp_path / "client.db"),
                key_source=KeySource.PASSPHRASE(passphrase="vault passphrase"),
            )
        )
        async with client.events() as events:
            assert isinstance(events, AuthEvents)
            await client.initialize()
            user = await client.sign_up(f"py-{uuid.uuid4().hex[:12]}@example.com", "correct horse battery staple")
            await client.sign_out()
            seen = []
            async for event in events:
                seen.append(event)
                if event == AuthEvent.STATE_CHANGED(state=AuthState.SIGNED_OUT(reason=SignOutReason.USER_SIGNED_OUT())):
                    break
        assert seen[0] == AuthEvent.STATE_CHANGED(
            state=AuthState.SIGNED_OUT(reason=SignOutReason.NO_STORED_SESSION())
        ), seen
        assert any(e.is_state_changed() and e.state.is_signed_in() and e.state.user.id == user.id for e in seen)
        # Closed: iteration ends at once, even though the client goes on making events.
        await client.sign_in(user.email, "correct horse battery staple")
        assert [e async for e in events] == []

    asyncio.run(asyncio.wait_for(scenario(), 60))
