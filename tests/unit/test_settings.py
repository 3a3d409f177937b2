"""One settings module: every variable read once per container, a missing one named at cold start."""

import pytest

from billing_webhooks.settings import settings


def test_a_missing_required_variable_fails_naming_it(monkeypatch):
    monkeypatch.delenv("TABLE_NAME")
    monkeypatch.delenv("RESCUE_QUEUE_URL")
    with pytest.raises(RuntimeError, match="TABLE_NAME, RESCUE_QUEUE_URL"):
        settings()


def test_defaults_apply_and_numbers_are_numbers(monkeypatch):
    monkeypatch.delenv("BILLING_SIGNATURE", raising=False)
    monkeypatch.setenv("SECRETS_CACHE_SECONDS", "60")
    current = settings()
    assert current.billing_signature == "off" and not current.signatures_required
    assert (
        current.secrets_cache_seconds == 60.0
        and current.bitrix24_oauth_hosts == "oauth.bitrix.info,oauth.bitrix24.tech"
    )


def test_read_once_per_container(monkeypatch):
    first = settings()
    monkeypatch.setenv("TABLE_NAME", "another")
    assert settings() is first and settings().table_name != "another"
    settings.cache_clear()
    assert settings().table_name == "another"


def test_a_webhook_reads_them_when_its_function_is_loaded(monkeypatch):
    from billing_webhooks.http.pipeline import Webhook
    from billing_webhooks.models.billing import NewPayment

    monkeypatch.delenv("QUARANTINE_TABLE_NAME")
    with pytest.raises(RuntimeError, match="QUARANTINE_TABLE_NAME"):
        Webhook(NewPayment, auth=lambda event, payload: None)


def test_a_value_of_the_wrong_type_fails_naming_its_variable(monkeypatch):
    monkeypatch.setenv("LICENCE_SYNC_CONCURRENCY", "sixteen")
    monkeypatch.setenv("BILLING_SIGNATURE", "sometimes")
    with pytest.raises(RuntimeError, match="LICENCE_SYNC_CONCURRENCY.*BILLING_SIGNATURE|BILLING_SIGNATURE.*LICENCE"):
        settings()


def test_counts_are_whole_numbers(monkeypatch):
    monkeypatch.setenv("QUARANTINE_CAP_PER_SENDER", "250")
    assert settings().quarantine_cap_per_sender == 250 and isinstance(settings().quarantine_cap_per_sender, int)
