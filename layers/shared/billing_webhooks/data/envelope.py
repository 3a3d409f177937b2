"""Envelope encryption under the stack's token key (KMS): each sealing asks KMS for a fresh data
key, encrypts with it here (AES-256-GCM) and keeps only the data key as KMS encrypted it. KMS
binds both to `context` (the portal's member_id), so a sealed value moved onto another portal's
item does not open. Only a role with kms:Decrypt on the key can open one: the functions that
refresh tokens (template.yaml)."""

import base64
import os
from typing import Any

from billing_webhooks.data import aws
from billing_webhooks.settings import settings

NONCE_BYTES = 12


def _associated(context: dict[str, str]) -> bytes:
    return "|".join(f"{name}={value}" for name, value in sorted(context.items())).encode()


def _aead(key: bytes) -> Any:
    # Lazy: cryptography costs the functions that never seal a token nothing at cold start.
    from cryptography.hazmat.primitives.ciphers.aead import AESGCM

    return AESGCM(key)


def seal(plaintext: bytes, context: dict[str, str]) -> dict[str, str]:
    """`plaintext` sealed: {"data_key", "sealed"}, both base64, neither readable without KMS."""
    answer = aws.client("kms").generate_data_key(
        KeyId=settings().token_store_key_id, KeySpec="AES_256", EncryptionContext=context
    )
    nonce = os.urandom(NONCE_BYTES)
    sealed = nonce + _aead(answer["Plaintext"]).encrypt(nonce, plaintext, _associated(context))
    return {
        "data_key": base64.b64encode(answer["CiphertextBlob"]).decode(),
        "sealed": base64.b64encode(sealed).decode(),
    }


def open_sealed(envelope: dict[str, Any], context: dict[str, str]) -> bytes:
    """What `seal` sealed under the same `context`; an exception if anything differs."""
    key = aws.client("kms").decrypt(CiphertextBlob=base64.b64decode(envelope["data_key"]), EncryptionContext=context)[
        "Plaintext"
    ]
    sealed = base64.b64decode(envelope["sealed"])
    return _aead(key).decrypt(sealed[:NONCE_BYTES], sealed[NONCE_BYTES:], _associated(context))
