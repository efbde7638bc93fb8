"""Passwords, signed tokens and keyed hashes. No web framework here: domains may use it."""

from __future__ import annotations

import hashlib
import hmac
from typing import Any

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError
from itsdangerous import BadSignature, SignatureExpired, URLSafeTimedSerializer

_hasher = PasswordHasher()
# Verifying against this keeps a wrong username as slow as a wrong password.
_DUMMY_HASH = _hasher.hash("kaifang-timing-equaliser")


def hash_password(password: str) -> str:
    return _hasher.hash(password)


def verify_password(password_hash: str | None, password: str) -> bool:
    try:
        return _hasher.verify(password_hash or _DUMMY_HASH, password) and bool(password_hash)
    except (VerifyMismatchError, VerificationError, InvalidHashError):
        return False


class Signer:
    """Purpose-bound, expiring tokens: a token made for one salt never opens another."""

    def __init__(self, secret_key: str) -> None:
        self._secret = secret_key

    def dumps(self, purpose: str, payload: Any) -> str:
        return URLSafeTimedSerializer(self._secret, salt=purpose).dumps(payload)

    def loads(self, purpose: str, token: str, max_age_s: int | None = None) -> Any | None:
        try:
            serializer = URLSafeTimedSerializer(self._secret, salt=purpose)
            return serializer.loads(token, max_age=max_age_s)
        except (BadSignature, SignatureExpired, ValueError, TypeError):
            return None

    def keyed_hash(self, purpose: str, value: str) -> str:
        key = hashlib.sha256(f"{purpose}:{self._secret}".encode()).digest()
        return hmac.new(key, value.encode(), hashlib.sha256).hexdigest()
