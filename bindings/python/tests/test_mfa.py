"""The second factor (PROTOCOL 9) against a real holdfast-server: enrolment with its QR
code, confirmation, a sign-in that waits for a code (an outcome and a state, not an error),
finishing it with a code, step-up, new recovery codes, a sign-in finished with a recovery
code, and disabling it; with the enrolment's secrets never printed.

Codes are computed with pyotp from the secret the enrolment hands out. The server accepts
each time step's code once, within one step of its clock: `Authenticator.code()` takes the
oldest step not used yet, so the three codes this test needs never wait for the clock
(recovery codes do the rest)."""

import asyncio
import time
import uuid

import pyotp
import pytest

from holdfast import (
    AuthClient,
    AuthState,
    ClientConfig,
    HoldfastError,
    KeySource,
    MfaEnrollment,
    RecoveryCodes,
    SignInOutcome,
)

PASSWORD = "correct horse battery staple"


def run(coroutine):
    return asyncio.run(coroutine)


def new_email():
    return f"py-mfa-{uuid.uuid4().hex[:12]}@example.com"


def client_on(server, tmp_path, name):
    return AuthClient(
        ClientConfig(
            server_url=server.url,
            storage_path=str(tmp_path / f"{name}.db"),
            key_source=KeySource.PASSPHRASE(passphrase="vault passphrase"),
        )
    )


class Authenticator:
    """An authenticator app: the next code for a step the server has not seen yet."""

    def __init__(self, secret):
        self.totp = pyotp.TOTP(secret)
        self.next_step = 0

    def code(self):
        current = int(time.time()) // 30
        step = max(self.next_step, current - 1)
        assert step <= current + 1, "no unused step left"
        self.next_step = step + 1
        return self.totp.at(step * 30)


def test_a_second_factor_from_enrolment_to_disabling(server, tmp_path):
    async def scenario():
        email = new_email()
        laptop = client_on(server, tmp_path, "laptop")
        await laptop.initialize()
        user = await laptop.sign_up(email, PASSWORD)

        enrollment = await laptop.enroll_mfa()
        assert enrollment.uri.startswith("otpauth://totp/")
        assert enrollment.qr_svg.startswith("<?xml") or enrollment.qr_svg.startswith("<svg")
        assert enrollment.qr_png[:8] == b"\x89PNG\r\n\x1a\n"
        assert len(enrollment.recovery_codes) == 8
        for printed in (str(enrollment), repr(enrollment)):
            assert enrollment.secret not in printed, printed
            assert "otpauth" not in printed, printed
            assert all(code not in printed for code in enrollment.recovery_codes), printed
            assert "<redacted>" in printed, printed
        app = Authenticator(enrollment.secret)

        assert not (await laptop.mfa_status()).enabled
        with pytest.raises(HoldfastError.InvalidCode):
            await laptop.confirm_mfa("000000" if app.totp.now() != "000000" else "111111")
        await laptop.confirm_mfa(app.code())
        status = await laptop.mfa_status()
        assert status.enabled and status.remaining_recovery_codes == 8
        with pytest.raises(HoldfastError.MfaAlreadyEnabled):
            await laptop.enroll_mfa()

        # Sign out and in again: the password is right, and a code is owed.
        await laptop.sign_out()
        outcome = await laptop.sign_in(email, PASSWORD)
        assert outcome == SignInOutcome.SECOND_FACTOR_REQUIRED(user=outcome.user)
        assert outcome.user.id == user.id
        assert laptop.state() == AuthState.SECOND_FACTOR_REQUIRED(user=outcome.user)
        with pytest.raises(HoldfastError.SecondFactorRequired):
            await laptop.access_token()

        # A restart keeps it waiting; the code alone finishes it.
        laptop = client_on(server, tmp_path, "laptop")
        assert isinstance(await laptop.initialize(), AuthState.SECOND_FACTOR_REQUIRED)
        signed_in = await laptop.complete_sign_in_with_code(app.code())
        assert signed_in.id == user.id
        assert isinstance(laptop.state(), AuthState.SIGNED_IN)
        assert await laptop.access_token()

        # Step-up, then a sensitive call: new recovery codes (the old ones stop working).
        await laptop.step_up(enrollment.recovery_codes[0])
        codes = await laptop.regenerate_recovery_codes(app.code())
        assert isinstance(codes, RecoveryCodes) and len(codes.codes) == 8
        assert all(code not in str(codes) and code not in repr(codes) for code in codes.codes)

        # Another device finishes its sign-in with a recovery code; an old one is refused.
        phone = client_on(server, tmp_path, "phone")
        await phone.initialize()
        assert isinstance(await phone.sign_in(email, PASSWORD), SignInOutcome.SECOND_FACTOR_REQUIRED)
        with pytest.raises(HoldfastError.InvalidCode):
            await phone.complete_sign_in_with_recovery_code(enrollment.recovery_codes[1])
        assert isinstance(phone.state(), AuthState.SECOND_FACTOR_REQUIRED)
        await phone.complete_sign_in_with_recovery_code(codes.codes[0])
        assert isinstance(phone.state(), AuthState.SIGNED_IN)
        assert (await phone.mfa_status()).remaining_recovery_codes == 7

        # Disabling it (a recovery code does too): a sign-in is complete at once again.
        await laptop.disable_mfa(codes.codes[1])
        assert not (await laptop.mfa_status()).enabled
        tablet = client_on(server, tmp_path, "tablet")
        await tablet.initialize()
        assert isinstance(await tablet.sign_in(email, PASSWORD), SignInOutcome.SIGNED_IN)

    run(scenario())


def test_an_enrolment_prints_redacted():
    enrollment = MfaEnrollment(
        uri="otpauth://totp/x?secret=JBSWY3DPEHPK3PXP",
        secret="JBSWY3DPEHPK3PXP",
        recovery_codes=["aaaa-bbbb"],
        qr_svg="<svg/>",
        qr_png=b"\x89PNG",
    )
    for printed in (str(enrollment), repr(enrollment)):
        assert "JBSWY3DPEHPK3PXP" not in printed and "aaaa-bbbb" not in printed, printed
