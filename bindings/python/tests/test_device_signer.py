"""A device key the app holds itself (Secure Enclave, StrongBox), implemented here in Python
with the `cryptography` package: Holdfast uses it for every device proof and challenge,
and the real server accepts them."""

import asyncio
import base64
import hashlib
import json
import uuid

import pytest
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.utils import decode_dss_signature, encode_dss_signature

from holdfast import AuthClient, ClientConfig, DeviceSigner, HoldfastError, KeySource

PASSWORD = "correct horse battery staple"


def b64url(data):
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def b64url_decode(text):
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


class AppSigner(DeviceSigner):
    """A P-256 key the app keeps; Holdfast never sees the private half."""

    def __init__(self, der_signatures=False):
        self.key = ec.generate_private_key(ec.SECP256R1())
        self.der_signatures = der_signatures
        self.signed = []

    def jwk(self):
        numbers = self.key.public_key().public_numbers()
        return {
            "kty": "EC",
            "crv": "P-256",
            "x": b64url(numbers.x.to_bytes(32, "big")),
            "y": b64url(numbers.y.to_bytes(32, "big")),
        }

    def thumbprint(self):
        jwk = self.jwk()
        canonical = json.dumps({k: jwk[k] for k in ("crv", "kty", "x", "y")}, separators=(",", ":"))
        return b64url(hashlib.sha256(canonical.encode()).digest())

    def public_jwk(self):
        return json.dumps(self.jwk())

    def sign(self, message):
        message = bytes(message)
        der = self.key.sign(message, ec.ECDSA(hashes.SHA256()))
        self.signed.append(message)
        if self.der_signatures:
            return der
        r, s = decode_dss_signature(der)
        return r.to_bytes(32, "big") + s.to_bytes(32, "big")

    def verifies(self, jwt):
        """Whether `jwt` (ES256, P1363 signature) was signed by this key."""
        header, payload, signature = jwt.split(".")
        raw = b64url_decode(signature)
        der = encode_dss_signature(int.from_bytes(raw[:32], "big"), int.from_bytes(raw[32:], "big"))
        try:
            self.key.public_key().verify(der, f"{header}.{payload}".encode(), ec.ECDSA(hashes.SHA256()))
            return True
        except InvalidSignature:
            return False


def claims(jwt):
    return json.loads(b64url_decode(jwt.split(".")[1]))


def signer_client(server_url, storage_path, signer, bind_tokens=True):
    return AuthClient(
        ClientConfig(
            server_url=server_url,
            storage_path=str(storage_path),
            key_source=KeySource.PASSPHRASE(passphrase="vault passphrase"),
            device_name="app-held key",
            device_signer=signer,
            bind_tokens=bind_tokens,
        )
    )


def test_an_app_held_key_signs_every_proof_and_the_server_accepts_them(server, tmp_path):
    signer = AppSigner()

    async def scenario():
        client = signer_client(server.url, tmp_path / "client.db", signer)
        await client.initialize()
        await client.sign_up(f"signer-{uuid.uuid4().hex[:10]}@example.com", PASSWORD)

        # The device is the app's key: same thumbprint, same public key on the server.
        assert await client.device_thumbprint() == signer.thumbprint()
        device = await client.register_device("app-held key")
        assert json.loads(device.public_key)["x"] == signer.jwk()["x"]
        # Tokens are bound to it (cnf.jkt), so bearer calls need its proofs...
        token = await client.access_token()
        assert claims(token)["cnf"]["jkt"] == signer.thumbprint()
        before = len(signer.signed)
        devices = await client.list_devices()
        assert device.id in [d.id for d in devices]
        assert len(signer.signed) > before, "the bearer call's proof was signed by the app's key"

        # ...and sync credentials carry one the app's key signed, for this token and URL.
        sync_url = server.url.replace("http://", "ws://") + "/sync"
        credentials = await client.sync_credentials(sync_url)
        assert signer.verifies(credentials.proof)
        proof = claims(credentials.proof)
        assert proof["htu"] == sync_url and proof["htm"] == "GET"
        header = json.loads(b64url_decode(credentials.proof.split(".")[0]))
        assert header["jwk"]["x"] == signer.jwk()["x"]

        # A rotation keeps the binding, and the server still takes the app's proofs.
        rotated = await client.refresh()
        assert rotated != token and claims(rotated)["cnf"]["jkt"] == signer.thumbprint()
        assert device.id in [d.id for d in await client.list_devices()]

    asyncio.run(scenario())


def test_a_signer_returning_der_is_refused_without_a_crash(server, tmp_path):
    signer = AppSigner(der_signatures=True)

    async def scenario():
        # Binding on, sign-up itself needs a proof: refused, nothing crashes, still signed out.
        bound = signer_client(server.url, tmp_path / "bound.db", signer)
        await bound.initialize()
        with pytest.raises(HoldfastError) as raised:
            await bound.sign_up(f"der-{uuid.uuid4().hex[:10]}@example.com", PASSWORD)
        assert "64" in str(raised.value) and "DER" in str(raised.value), raised.value
        assert bound.state().is_signed_out()

        # Binding off, sign-up needs none; the next proof is refused the same way.
        client = signer_client(server.url, tmp_path / "client.db", signer, bind_tokens=False)
        await client.initialize()
        await client.sign_up(f"der-{uuid.uuid4().hex[:10]}@example.com", PASSWORD)
        with pytest.raises(HoldfastError) as raised:
            await client.device_proof("GET", server.url + "/auth/devices")
        assert "64" in str(raised.value) and "DER" in str(raised.value), raised.value
        # The app's bug costs a proof, not the session.
        assert client.state().is_signed_in()

    asyncio.run(scenario())
