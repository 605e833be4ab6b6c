"""`str(error)` as a sentence: the generated exceptions print their fields
(`message='...'`), or nothing at all for the kinds without fields.

`SENTENCES` holds, per kind, the same text as the Rust error's `Display` (the
`#[error("...")]` attributes of `ffi/src/error.rs`; a test keeps both in step).
"""

from ._native.holdfast import HoldfastError

SENTENCES = {
    "InvalidInput": "invalid input: {message}",
    "InvalidCredentials": "invalid email or password",
    "Transient": "temporarily unavailable: {message}",
    "SignInRequired": "sign-in required ({code})",
    "Refused": "refused by the server ({code}): {message}",
    "NotSignedIn": "not signed in",
    "SecondFactorRequired": "a second factor is required to finish signing in",
    "StepUpRequired": "confirm with a code from the authenticator app, then try again",
    "InvalidCode": "the code is wrong, expired or already used",
    "MfaAlreadyEnabled": "a second factor is already enabled for this account",
    "StorageUnavailable": "storage unavailable: {message}",
    "WrongPassphrase": "wrong passphrase",
    "Usage": "usage error: {message}",
    "Configuration": "configuration error: {message}",
    "Protocol": "unexpected answer from the server: {message}",
}


def _sentence(template):
    def __str__(self):
        try:
            return template.format(**vars(self))
        except (KeyError, IndexError, ValueError):
            return template

    return __str__


def _repr(name):
    def __repr__(self):
        fields = self.args[0] if self.args else ""
        return f"HoldfastError.{name}({fields})"

    return __repr__


def install():
    for name, template in SENTENCES.items():
        kind = getattr(HoldfastError, name)
        kind.__str__ = _sentence(template)
        kind.__repr__ = _repr(name)
