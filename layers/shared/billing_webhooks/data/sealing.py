"""The one sealing scheme: KMS Encrypt and Decrypt, directly, with the encryption context KMS binds
to the ciphertext (the portal's member_id), so a sealed value moved onto another portal's item
does not open. What is sealed is small (a token pair: about 200 bytes; KMS takes 4 KB), so no
data key is needed. Only a role with kms:Decrypt on the key opens one (template.yaml).

Token pairs sealed before this scheme (a data key from GenerateDataKey and AES-256-GCM, the
`data_key` attribute) still open, in the functions that ship `cryptography` for it (the licence
sync's; functions/*/requirements.txt), until their next write seals them this way.
"""

import base64
from typing import Any

from billing_webhooks.data import aws

NONCE_BYTES = 12  # the former scheme's AES-GCM nonce


def seal(plaintext: bytes, key_id: str, context: dict[str, str]) -> str:
    """`plaintext` sealed under `key_id` and `context`, as base64 text."""
    answer = aws.client("kms").encrypt(KeyId=key_id, Plaintext=plaintext, EncryptionContext=context)
    return base64.b64encode(answer["CiphertextBlob"]).decode()


def open_sealed(sealed: str, context: dict[str, str]) -> bytes:
    """What `seal` sealed under the same `context`; an exception if anything differs."""
    return aws.client("kms").decrypt(CiphertextBlob=base64.b64decode(sealed), EncryptionContext=context)["Plaintext"]


def open_former(envelope: dict[str, Any], context: dict[str, str]) -> bytes:
    """A value sealed the former way: its data key opened by KMS, then AES-256-GCM with the context
    as associated data."""
    from cryptography.hazmat.primitives.ciphers.aead import AESGCM  # only where such values remain

    key = open_sealed(envelope["data_key"], context)
    sealed = base64.b64decode(envelope["sealed"])
    associated = "|".join(f"{name}={value}" for name, value in sorted(context.items())).encode()
    return AESGCM(key).decrypt(sealed[:NONCE_BYTES], sealed[NONCE_BYTES:], associated)
