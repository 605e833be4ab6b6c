"""The sessions and account lifecycle against a real holdfast-server (no mailer: a
development server answers reset and verification tokens): listing and ending sessions,
signing out everywhere, changing and resetting the password, verifying the email, deleting
the account, sign-up metadata; and a session ended elsewhere saying why."""

import asyncio
import json
import uuid

import pytest

from holdfast import (
    AuthClient,
    AuthState,
    ClientConfig,
    HoldfastError,
    KeySource,
    Session,
    SessionEndReason,
    SignOutReason,
)

PASSWORD = "correct horse battery staple"
NEW_PASSWORD = "a brand new passphrase"


def run(coroutine):
    return asyncio.run(coroutine)


def new_email():
    return f"py-{uuid.uuid4().hex[:12]}@example.com"


async def signed_in(server, tmp_path, name, email, sign_up=False):
    """A client of `email` on its own store under `tmp_path`."""
    client = AuthClient(
        ClientConfig(
            server_url=server.url,
            storage_path=str(tmp_path / f"{name}.db"),
            key_source=KeySource.PASSPHRASE(passphrase="vault passphrase"),
        )
    )
    await client.initialize()
    if sign_up:
        await client.sign_up(email, PASSWORD)
    else:
        await client.sign_in(email, PASSWORD)
    return client


async def assert_ended_elsewhere(client, reason):
    """The client's next refresh finds its session ended and signs out, saying why."""
    with pytest.raises(HoldfastError.SignInRequired) as refused:
        await client.refresh()
    assert refused.value.code == "TOKEN_REVOKED"
    assert client.state() == AuthState.SIGNED_OUT(reason=SignOutReason.SESSION_ENDED(reason=reason))
    assert client.current_user() is None


def test_sessions_are_listed_and_ended_and_their_clients_say_why(server, tmp_path):
    async def scenario():
        email = new_email()
        here = await signed_in(server, tmp_path, "here", email, sign_up=True)
        there = await signed_in(server, tmp_path, "there", email)

        sessions = await here.sessions()
        assert len(sessions) == 2 and all(isinstance(s, Session) for s in sessions)
        assert [s.current for s in sessions].count(True) == 1
        theirs = next(s for s in sessions if not s.current)
        assert theirs.device_id == await there.device_id()
        assert theirs.aal == 1 and theirs.created_at_ms <= theirs.last_used_at_ms
        assert theirs.id in str(theirs)

        with pytest.raises(HoldfastError.Refused) as unknown:
            await here.revoke_session("no-such-session")
        assert unknown.value.code == "NOT_FOUND"

        await here.revoke_session(theirs.id)
        await assert_ended_elsewhere(there, SessionEndReason.REVOKED)
        assert str(there.state()) == "SignedOut { reason: SessionEnded { reason: Revoked } }"

        again = await signed_in(server, tmp_path, "again", email)
        assert await here.revoke_other_sessions() == 1
        await assert_ended_elsewhere(again, SessionEndReason.REVOKED_BY_OTHER_SESSION)
        assert len(await here.refresh()) > 0, "this session lives on"

        last = await signed_in(server, tmp_path, "last", email)
        assert await here.sign_out_everywhere() == 2
        assert here.state() == AuthState.SIGNED_OUT(
            reason=SignOutReason.SESSION_ENDED(reason=SessionEndReason.SIGNED_OUT_EVERYWHERE)
        )
        await assert_ended_elsewhere(last, SessionEndReason.SIGNED_OUT_EVERYWHERE)

    run(scenario())


def test_the_password_changes_and_resets(server, tmp_path):
    async def scenario():
        email = new_email()
        here = await signed_in(server, tmp_path, "here", email, sign_up=True)
        there = await signed_in(server, tmp_path, "there", email)

        with pytest.raises(HoldfastError.InvalidCredentials):
            await here.change_password("not the password", NEW_PASSWORD)
        with pytest.raises(HoldfastError.InvalidInput):
            await here.change_password(PASSWORD, "short")
        assert here.state().is_signed_in()
        await here.change_password(PASSWORD, NEW_PASSWORD)
        assert here.state().is_signed_in()
        await here.refresh()
        await assert_ended_elsewhere(there, SessionEndReason.PASSWORD_CHANGED)

        token = await here.request_password_reset(email)
        assert token, "a development server answers the token"
        assert await here.request_password_reset(new_email()) is None
        with pytest.raises(HoldfastError.Refused) as invalid:
            await here.reset_password("not-a-reset-token", PASSWORD)
        assert invalid.value.code == "RESET_TOKEN_INVALID"
        await here.reset_password(token, PASSWORD)
        await assert_ended_elsewhere(here, SessionEndReason.PASSWORD_RESET)
        with pytest.raises(HoldfastError.InvalidCredentials):
            await here.sign_in(email, NEW_PASSWORD)
        assert (await here.sign_in(email, PASSWORD)).user.email == email

    run(scenario())


def test_the_email_is_verified_with_the_mailed_token(server, tmp_path):
    async def scenario():
        email = new_email()
        client = await signed_in(server, tmp_path, "client", email, sign_up=True)
        assert not client.current_user().email_verified
        first = await client.send_verification()
        assert first
        assert await client.send_verification(email)
        token = await client.resend_verification()
        assert token and token != first
        with pytest.raises(HoldfastError.InvalidInput):
            await client.send_verification(new_email())
        with pytest.raises(HoldfastError.Refused) as invalid:
            await client.confirm_email("not-a-verification-token")
        assert invalid.value.code == "VERIFY_TOKEN_INVALID"

        user = await client.confirm_email(token)
        assert user.email_verified and user.email == email
        assert client.current_user().email_verified
        assert await client.resend_verification() is None, "nothing to send once verified"

    run(scenario())


def test_the_account_is_deleted_with_its_password(server, tmp_path):
    async def scenario():
        client = AuthClient(
            ClientConfig(
                server_url=server.url,
                storage_path=str(tmp_path / "client.db"),
                key_source=KeySource.PASSPHRASE(passphrase="vault passphrase"),
            )
        )
        await client.initialize()
        email = new_email()
        user = await client.sign_up(email, PASSWORD, "Ada", json.dumps({"plan": "pro"}))
        assert json.loads(user.metadata_json) == {"plan": "pro"}
        with pytest.raises(HoldfastError.InvalidInput):
            await client.sign_up(new_email(), PASSWORD, None, "not json")
        device_id = await client.device_id()

        with pytest.raises(HoldfastError.InvalidCredentials):
            await client.delete_account("not the password")
        assert client.state().is_signed_in()
        await client.delete_account(PASSWORD)
        assert client.state() == AuthState.SIGNED_OUT(reason=SignOutReason.ACCOUNT_DELETED())
        assert await client.device_id() != device_id, "the device key went with the account"
        with pytest.raises(HoldfastError.InvalidCredentials):
            await client.sign_in(email, PASSWORD)

    run(scenario())
