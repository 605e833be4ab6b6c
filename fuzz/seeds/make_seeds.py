"""Writes the committed seed corpus of every fuzz target (fuzz/corpus/<target>/) from the
conformance vectors and a device key generated here. Run again only to change the seeds:
`python3 fuzz/seeds/make_seeds.py` (needs the `cryptography` package)."""
import base64, hashlib, json, os, pathlib, struct, time, uuid
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.utils import decode_dss_signature

ROOT = pathlib.Path(__file__).resolve().parents[2]
CORPUS = ROOT / "fuzz" / "corpus"
V = json.loads((ROOT / "conformance" / "kora-vectors.json").read_text())

def b64u(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()

def write(target: str, name: str, data) -> None:
    folder = CORPUS / target
    folder.mkdir(parents=True, exist_ok=True)
    (folder / name).write_bytes(data if isinstance(data, bytes) else data.encode())

# A device key and a proof for a token request and for a bearer request.
key = ec.generate_private_key(ec.SECP256R1())
nums = key.public_key().public_numbers()
jwk = {"kty": "EC", "crv": "P-256", "x": b64u(nums.x.to_bytes(32, "big")), "y": b64u(nums.y.to_bytes(32, "big"))}

def proof(htm: str, htu: str, access_token=None, iat=1_700_000_000) -> str:
    header = {"typ": "dpop+jwt", "alg": "ES256", "jwk": jwk}
    claims = {"jti": str(uuid.UUID(int=iat)), "htm": htm, "htu": htu, "iat": iat}
    if access_token is not None:
        claims["ath"] = b64u(hashlib.sha256(access_token.encode()).digest())
    signing_input = b64u(json.dumps(header, separators=(",", ":")).encode()) + "." + b64u(
        json.dumps(claims, separators=(",", ":")).encode())
    r, s = decode_dss_signature(key.sign(signing_input.encode(), ec.ECDSA(hashes.SHA256())))
    return signing_input + "." + b64u(r.to_bytes(32, "big") + s.to_bytes(32, "big"))

access = V["jwt"]["access"]["token"]
credential = V["jwt"]["deviceCredential"]["token"]

# jwt: tokens, and claims payloads (the target also signs its input as a payload).
write("jwt", "access", access)
write("jwt", "device-credential", credential)
write("jwt", "claims-access", json.dumps(V["jwt"]["access"]["payload"]))
write("jwt", "claims-refresh", json.dumps({**V["jwt"]["access"]["payload"], "type": "refresh", "fam": "f-1",
                                            "cnf": {"jkt": "VfgaAVYfO1paNyhrn-87ShJMMRBGtlxiFWr4uWfJzI4"}}))

# jwk: Kora's wire string, a bare key, and SEC1 bytes.
write("jwk", "kora-wire", V["device"]["devicePublicKeyWireString"])
write("jwk", "bare", json.dumps(jwk))
write("jwk", "sec1", b"\x04" + nums.x.to_bytes(32, "big") + nums.y.to_bytes(32, "big"))

# device_proof: token-request and bearer proofs.
write("device_proof", "refresh", proof("POST", "https://auth.example/auth/refresh"))
write("device_proof", "me", proof("GET", "https://auth.example/auth/me", access))
write("device_proof", "sync-ws", proof("GET", "wss://auth.example/sync", access))

# routes: selector byte (method in bits 0-1: GET POST DELETE PUT; route index above),
# then Authorization, DPoP and body separated by newlines.
routes = ["/auth/signup", "/auth/signin", "/auth/refresh", "/auth/signout", "/auth/me",
          "/auth/device/register", "/auth/device/challenge", "/auth/device/verify",
          "/auth/devices", "/auth/devices/dev-1", "/auth/nowhere"]
def route(method: int, path: str, authorization: str, dpop: str, body) -> bytes:
    selector = (routes.index(path) << 2) | method
    text = body if isinstance(body, str) else json.dumps(body)
    return bytes([selector]) + f"{authorization}\n{dpop}\n{text}".encode()
wire_key = V["device"]["devicePublicKeyWireString"]
write("routes", "signup", route(1, "/auth/signup", "", "", {"email": "a@b.co", "password": "correct horse battery", "name": "A", "deviceId": "dev-1", "devicePublicKey": wire_key}))
write("routes", "signin", route(1, "/auth/signin", "", proof("POST", "http://localhost/auth/signin"), {"email": "a@b.co", "password": "correct horse battery", "deviceId": "dev-1", "devicePublicKey": wire_key}))
write("routes", "refresh", route(1, "/auth/refresh", "", "", {"refreshToken": access}))
write("routes", "signout", route(1, "/auth/signout", "", "", {"refreshToken": access}))
write("routes", "me", route(0, "/auth/me", "Bearer " + access, "", ""))
write("routes", "me-dpop", route(0, "/auth/me", "DPoP " + access, proof("GET", "http://localhost/auth/me", access), ""))
write("routes", "register", route(1, "/auth/device/register", "Bearer " + access, "", {"deviceId": "dev-2", "publicKey": wire_key, "name": "Phone"}))
write("routes", "challenge", route(1, "/auth/device/challenge", "", "", {"deviceId": "dev-1"}))
write("routes", "verify", route(1, "/auth/device/verify", "", "", {"deviceId": "dev-1", "challenge": V["device"]["challenge"], "signature": V["device"]["signatureP1363B64u"]}))
write("routes", "devices", route(0, "/auth/devices", "Bearer " + access, "", ""))
write("routes", "revoke", route(2, "/auth/devices/dev-1", "Bearer " + access, "", ""))

# vault: Kora's stored value (the target decrypts it with its own key: the format is reached).
write("vault", "kora-stored-value", V["encryptedTokenStore"]["storedValue"])
write("vault", "envelope-shaped", b"\x01" + os.urandom(12) + os.urandom(48))

# client_answer: status (u16 LE, offset by 100), Date line, body.
def answer(status: int, date: str, body) -> bytes:
    text = body if isinstance(body, str) else json.dumps(body)
    return struct.pack("<H", status - 100) + f"{date}\n{text}".encode()
date = "Tue, 14 Nov 2023 22:13:20 GMT"
user = {"id": "user-1", "email": "a@b.co", "name": "A"}
write("client_answer", "signin", answer(200, date, {"data": {"user": user, "tokens": {"accessToken": access, "refreshToken": access}}}))
write("client_answer", "refresh", answer(200, date, {"data": {"accessToken": access, "refreshToken": access}}))
write("client_answer", "challenge", answer(200, date, {"data": {"challenge": V["device"]["challenge"], "expiresAt": 1700000060000}}))
write("client_answer", "error", answer(401, date, {"error": "Invalid refresh token", "code": "TOKEN_INVALID"}))
write("client_answer", "portal", answer(200, "Thu, 01 Jan 1970 00:00:00 GMT", "<html>Sign in to the Wi-Fi</html>"))
write("client_answer", "busy", answer(503, "120", {"error": "busy", "code": "SERVICE_UNAVAILABLE"}))

# sync_message: the client messages of PROTOCOL 5.
write("sync_message", "auth", json.dumps({"type": "auth", "authToken": access, "proof": proof("GET", "ws://localhost/sync", access)}))
write("sync_message", "put", json.dumps({"type": "put", "key": "note-1", "value": {"text": "hello", "n": [1, 2, 3]}}))
write("sync_message", "reauth", json.dumps({"type": "reauth", "authToken": access}))
# mfa: the code of the target's fixed secret at its fixed time (RFC 6238, SHA-1, 6 digits),
# base32 text, and sealed-secret shapes.
import hmac
def totp(secret: bytes, unix: int, digits: int = 6) -> str:
    mac = hmac.new(secret, struct.pack(">Q", unix // 30), hashlib.sha1).digest()
    offset = mac[-1] & 0x0F
    value = (struct.unpack(">I", mac[offset:offset + 4])[0] & 0x7FFFFFFF) % (10 ** digits)
    return str(value).zfill(digits)
write("mfa", "code", totp(b"12345678901234567890", 1_700_000_000))
write("mfa", "base32", base64.b32encode(b"12345678901234567890").decode().rstrip("="))
write("mfa", "sealed-shape", "v1." + b64u(os.urandom(12 + 20 + 16)))
print("seeds written to", CORPUS)
