"""Encryption of secrets stored in the database, with a key derived from SECRET_KEY.

A copy of the database alone (a backup, a dump attached to a bug report) then does not reveal the RunPod API
key. Changing SECRET_KEY makes stored secrets unreadable: they must be entered again.
"""

from __future__ import annotations

import base64

from cryptography.fernet import Fernet, InvalidToken
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.kdf.hkdf import HKDF
from django.conf import settings

# Distinct per purpose, so the derived key is never the same bytes as anything else derived from SECRET_KEY.
_INFO = b"photo-studio backends: stored secrets"


class UnreadableSecret(Exception):
    """The ciphertext was made with another SECRET_KEY, or is damaged."""


def _fernet() -> Fernet:
    key = HKDF(algorithm=hashes.SHA256(), length=32, salt=None, info=_INFO).derive(settings.SECRET_KEY.encode())
    return Fernet(base64.urlsafe_b64encode(key))


def encrypt(plaintext: str) -> str:
    return _fernet().encrypt(plaintext.encode()).decode("ascii")


def decrypt(token: str) -> str:
    try:
        return _fernet().decrypt(token.encode("ascii")).decode()
    except (InvalidToken, ValueError) as exc:
        raise UnreadableSecret from exc
