"""Tokens and passwords: generated randomly, stored only as hashes, compared in constant time."""

from __future__ import annotations

import base64
import functools
import hashlib
import hmac
import secrets as _secrets

TOKEN_PREFIX_LEN = 10
# scrypt cost: ~30 ms per check on this class of machine; verified logins are cached in memory.
_SCRYPT_N, _SCRYPT_R, _SCRYPT_P = 2**14, 8, 1


def new_token() -> str:
    """A random 32-character URL-safe token."""
    return _secrets.token_urlsafe(24)


def hash_token(token: str) -> str:
    """Tokens are long random strings, so a fast hash suffices to keep them out of storage."""
    return hashlib.sha256(token.encode("utf-8", "surrogatepass")).hexdigest()


def token_prefix(token: str) -> str:
    """The only part of a token that may appear in logs."""
    return token[:TOKEN_PREFIX_LEN]


def new_secret() -> str:
    """A random secret for delivery-report URLs."""
    return _secrets.token_urlsafe(18)


def hash_password(password: str) -> str:
    """scrypt with a random salt, encoded with its parameters."""
    salt = _secrets.token_bytes(16)
    digest = hashlib.scrypt(
        password.encode("utf-8", "surrogatepass"), salt=salt, n=_SCRYPT_N, r=_SCRYPT_R, p=_SCRYPT_P
    )
    b64 = base64.b64encode
    return f"scrypt${_SCRYPT_N}${_SCRYPT_R}${_SCRYPT_P}${b64(salt).decode()}${b64(digest).decode()}"


@functools.cache
def dummy_hash() -> str:
    """A hash no password matches in practice, verified against when a username is unknown so
    that an unknown name costs as much as a wrong password (timing tells no names apart)."""
    return hash_password(_secrets.token_urlsafe(32))


def verify_password(password: str, encoded: str) -> bool:
    """Constant-time check of a password against hash_password's output."""
    try:
        scheme, n, r, p, salt, digest = encoded.split("$")
        if scheme != "scrypt":
            return False
        expected = base64.b64decode(digest)
        actual = hashlib.scrypt(
            password.encode("utf-8", "surrogatepass"),
            salt=base64.b64decode(salt),
            n=int(n),
            r=int(r),
            p=int(p),
            dklen=len(expected),
        )
    except (ValueError, TypeError):
        return False
    return hmac.compare_digest(actual, expected)
