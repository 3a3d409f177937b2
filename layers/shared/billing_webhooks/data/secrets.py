"""Our JSON secrets from Secrets Manager, cached per container for SECRETS_CACHE_SECONDS.

Powertools parameters does this as well, but importing it loads every provider it has (AppConfig,
SSM, DynamoDB, JMESPath): about 20 ms of cold start on every billing function, measured by
`make bench`. This is the part of it we use: one call per secret per cache period, and a
prefetch so that a cold container waits for Secrets Manager while it builds its DynamoDB client.
"""

import json
import threading
import time
from typing import Any

from billing_webhooks.data import aws
from billing_webhooks.settings import settings

_cache: dict[str, tuple[float, Any]] = {}
_in_flight: dict[str, "_Fetch"] = {}


class _Fetch(threading.Thread):
    """GetSecretValue on a thread of its own: the network wait overlaps the caller's work."""

    def __init__(self, secret_id: str) -> None:
        super().__init__(name=f"secret-{secret_id}", daemon=True)
        self.secret_id, self.client = secret_id, aws.client("secretsmanager")  # made here, used there
        self.started = time.monotonic()
        self.answer: dict[str, Any] | None = None
        self.error: BaseException | None = None

    def run(self) -> None:
        try:
            self.answer = self.client.get_secret_value(SecretId=self.secret_id)
        except BaseException as exc:  # handed to the reader, never lost on this thread
            self.error = exc


def _fresh(secret_id: str) -> bool:
    cached = _cache.get(secret_id)
    return cached is not None and cached[0] > time.monotonic()


def _max_age() -> float:
    return settings().secrets_cache_seconds


def prefetch(*secret_ids: str) -> None:
    """Start reading the secrets that are not cached; json_secret() picks up the answers. Never
    raises: a secret that cannot be read is reported by json_secret()."""
    for secret_id in secret_ids:
        if not _fresh(secret_id) and secret_id not in _in_flight:
            try:
                fetch = _Fetch(secret_id)
                fetch.start()  # before it is visible: another thread may join it at once
            except Exception:
                continue
            _in_flight[secret_id] = fetch


def json_secret(secret_id: str) -> Any:
    if _fresh(secret_id):
        return _cache[secret_id][1]
    fetch = _in_flight.pop(secret_id, None)
    if fetch is None or time.monotonic() - fetch.started > _max_age():  # none, or left unread too long
        answer = aws.client("secretsmanager").get_secret_value(SecretId=secret_id)
    else:
        fetch.join()
        if fetch.error is not None:
            raise fetch.error
        answer = fetch.answer
    value = json.loads(answer["SecretString"])
    _cache[secret_id] = (time.monotonic() + _max_age(), value)
    return value
