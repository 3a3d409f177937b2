"""Secrets are read once per cache period, fetched ahead on request, and failures reach the reader."""

import json
import threading

import pytest

from billing_webhooks.data import secrets


class FakeSecretsManager:
    def __init__(self, fail: bool = False) -> None:
        self.calls: list[str] = []
        self.threads: list[str] = []
        self.fail = fail

    def get_secret_value(self, SecretId: str) -> dict:  # noqa: N803 (boto3's name)
        self.calls.append(SecretId)
        self.threads.append(threading.current_thread().name)
        if self.fail:
            raise ConnectionError("unreachable")
        return {"SecretString": json.dumps({"current": f"value-of-{SecretId}"})}


@pytest.fixture
def manager(monkeypatch):
    fake = FakeSecretsManager()
    monkeypatch.setattr(secrets.aws, "client", lambda name: fake)
    monkeypatch.setattr(secrets, "_cache", {})
    monkeypatch.setattr(secrets, "_in_flight", {})
    return fake


def test_a_secret_is_read_once_per_cache_period(manager):
    assert secrets.json_secret("s1") == {"current": "value-of-s1"}
    assert secrets.json_secret("s1") == {"current": "value-of-s1"}
    assert manager.calls == ["s1"]


def test_an_expired_secret_is_read_again(manager, monkeypatch):
    monkeypatch.setenv("SECRETS_CACHE_SECONDS", "0")
    secrets.json_secret("s1")
    secrets.json_secret("s1")
    assert manager.calls == ["s1", "s1"]


def test_a_prefetched_secret_is_read_on_another_thread_and_not_again(manager):
    secrets.prefetch("s1", "s2")
    assert secrets.json_secret("s1") == {"current": "value-of-s1"}
    assert secrets.json_secret("s2") == {"current": "value-of-s2"}
    secrets.prefetch("s1")  # cached now: nothing to fetch
    assert sorted(manager.calls) == ["s1", "s2"]
    assert all(name.startswith("secret-") for name in manager.threads)


def test_a_failed_prefetch_reaches_the_reader(monkeypatch):
    monkeypatch.setattr(secrets.aws, "client", lambda name: FakeSecretsManager(fail=True))
    monkeypatch.setattr(secrets, "_cache", {})
    monkeypatch.setattr(secrets, "_in_flight", {})
    secrets.prefetch("s1")
    with pytest.raises(ConnectionError):
        secrets.json_secret("s1")
