import pytest

from billing_webhooks.data import installations
from billing_webhooks.data import secrets as secret_store
from billing_webhooks.errors import MissingCredentials, ServiceUnavailable, WrongCredentials
from billing_webhooks.http import auth
from billing_webhooks.http.portal_token import portal_application_token
from billing_webhooks.settings import settings
from billing_webhooks.wire.credentials import token_sha256
from billing_webhooks.wire.delivery import Delivery

ACTIVE = {"current": "new-secret", "previous": "old-secret"}
PORTALS = {"member-1": "token-1"}


@pytest.fixture
def secrets(monkeypatch):
    values = {"BILLING_SECRET_ID": ACTIVE, "BITRIX24_SECRET_ID": PORTALS}
    monkeypatch.setattr(secret_store, "json_secret", lambda secret_id: values[_variable_naming(secret_id)])
    return values


def _variable_naming(secret_id: str) -> str:
    """The environment variable whose value `secret_id` is."""
    return next(name.upper() for name, value in vars(settings()).items() if value == secret_id)


def _delivery(event: dict, payload: dict | None = None) -> Delivery:
    delivery = Delivery.of(event)
    delivery.payload = payload or {}
    return delivery


def _billing(headers=None, query=""):
    return {"headers": headers or {}, "rawQueryString": query}


def _accepted(event: dict) -> bool:
    """Whether billing_credentials lets the delivery through (it returns nothing, or raises)."""
    try:
        auth.billing_credentials(_delivery(event))
    except (MissingCredentials, WrongCredentials):
        return False
    return True


@pytest.mark.parametrize(
    ("headers", "query"),
    [
        ({"authorization": "Bearer new-secret"}, ""),
        ({"Authorization": "bearer old-secret"}, ""),  # rotation: both active
        ({"x-webhook-token": "new-secret"}, ""),
        ({}, "token=old-secret"),
        ({"authorization": "Bearer wrong"}, "token=new-secret"),
    ],
)
def test_billing_accepts_any_active_secret_in_any_place(secrets, headers, query):
    assert _accepted(_billing(headers, query))
    forged = {name: value.replace("secret", "secreT") for name, value in headers.items()}
    assert not _accepted(_billing(forged, query.replace("secret", "secreT")))


@pytest.mark.parametrize(("headers", "query"), [({}, ""), ({"authorization": "Basic abc"}, ""), ({}, "token=")])
def test_billing_without_credentials_is_401(secrets, headers, query):
    with pytest.raises(MissingCredentials) as caught:
        auth.billing_credentials(_delivery(_billing(headers, query)))
    assert caught.value.headers["WWW-Authenticate"].startswith("Bearer")


def test_billing_with_a_wrong_secret_is_403(secrets):
    with pytest.raises(WrongCredentials):
        auth.billing_credentials(_delivery(_billing({"authorization": "Bearer new-secreT"})))


def test_a_secret_that_cannot_be_read_is_503_not_a_refusal(monkeypatch):
    def fail(secret_id):
        raise RuntimeError("Secrets Manager is down")

    monkeypatch.setattr(secret_store, "json_secret", fail)
    with pytest.raises(ServiceUnavailable):
        auth.billing_credentials(_delivery(_billing({"authorization": "Bearer x"})))


def _portal_event(member_id: str, token: str, domain: str = "p.bitrix24.com") -> dict:
    return {"auth": {"member_id": member_id, "application_token": token, "domain": domain}}


@pytest.fixture
def installed(monkeypatch):
    """member-2 installed with token-2, member-3 uninstalled; member-1 has no installation record."""
    records = {
        "member-2": {
            "member_id": "member-2",
            "status": "installed",
            "domain": "p.bitrix24.com",
            "application_token_sha256": token_sha256("token-2"),
        },
        "member-3": {
            "member_id": "member-3",
            "status": "uninstalled",
            "domain": "p.bitrix24.com",
            "application_token_sha256": token_sha256("token-3"),
        },
    }
    monkeypatch.setattr(installations, "get", records.get)
    return records


def test_an_installed_portals_token_is_checked_against_its_stored_hash(secrets, installed):
    assert portal_application_token(_delivery({}, _portal_event("member-2", "token-2"))) == installed["member-2"]
    with pytest.raises(WrongCredentials):
        portal_application_token(_delivery({}, _portal_event("member-2", "token-1")))


def test_a_portals_token_is_good_only_on_the_domain_its_installation_holds(secrets, installed):
    with pytest.raises(WrongCredentials):
        portal_application_token(_delivery({}, _portal_event("member-2", "token-2", domain="victim.bitrix24.com")))


def test_an_uninstalled_portal_is_refused_even_with_its_token(secrets, installed):
    with pytest.raises(WrongCredentials):
        portal_application_token(_delivery({}, _portal_event("member-3", "token-3")))


def test_a_portal_without_installation_falls_back_to_the_configured_map(secrets, installed):
    assert portal_application_token(_delivery({}, _portal_event("member-1", "token-1"))) is None
    with pytest.raises(WrongCredentials):
        portal_application_token(_delivery({}, _portal_event("member-1", "token-2")))
    with pytest.raises(WrongCredentials):
        portal_application_token(_delivery({}, _portal_event("unknown", "token-1")))


@pytest.mark.parametrize(
    "body", [{}, {"auth": "x"}, {"auth": {"member_id": "member-1"}}, {"auth": {"application_token": "t"}}]
)
def test_portal_event_without_token_or_member_is_401(secrets, body):
    with pytest.raises(MissingCredentials):
        portal_application_token(_delivery({}, body))


SIGNING = {"current": "key-new", "previous": "key-old"}
BODY = b'{"id": "X1", "type": "NewPayment"}'


@pytest.fixture
def signing(monkeypatch, secrets):
    secrets["BILLING_SIGNING_SECRET_ID"] = SIGNING
    monkeypatch.setenv("BILLING_SIGNATURE", "required")


def _signed(
    key: str | None = "key-new", *, age: int = 0, body: bytes = BODY, signatures: list[str] | None = None
) -> dict:
    import time

    timestamp = str(int(time.time()) - age)
    headers = {"authorization": "Bearer new-secret", "x-webhook-timestamp": timestamp}
    signatures = signatures if signatures is not None else [auth.signature(key, timestamp, BODY)]
    if signatures:
        headers["x-webhook-signature"] = ", ".join(signatures)
    return {"headers": headers, "rawQueryString": "", "body": body.decode(), "isBase64Encoded": False}


@pytest.mark.parametrize("key", ["key-new", "key-old"])
def test_a_signature_with_any_active_key_is_accepted(signing, key):
    assert _accepted(_signed(key))
    assert not _accepted(_signed(key, body=BODY + b" "))


def test_one_valid_signature_among_several_is_enough(signing):
    timestamp = _signed()["headers"]["x-webhook-timestamp"]
    assert _accepted(_signed(signatures=["sha256=00", auth.signature("key-new", timestamp, BODY)]))
    assert not _accepted(_signed(signatures=["sha256=00", "sha256=11"]))


def test_a_missing_signature_is_401_when_signatures_are_required(signing):
    with pytest.raises(MissingCredentials):
        auth.billing_credentials(_delivery(_signed(signatures=[])))


@pytest.mark.parametrize(
    "delivery",
    [
        pytest.param({"key": "key-unknown"}, id="wrong-key"),
        pytest.param({"body": BODY.replace(b"X1", b"X2")}, id="tampered-body"),
        pytest.param({"age": 301}, id="older-than-5-minutes"),
        pytest.param({"age": -301}, id="more-than-5-minutes-ahead"),
    ],
)
def test_a_signature_that_does_not_hold_is_403(signing, delivery):
    with pytest.raises(WrongCredentials):
        auth.billing_credentials(_delivery(_signed(**delivery)))


def test_signatures_are_not_asked_for_unless_configured(secrets, monkeypatch):
    monkeypatch.setenv("BILLING_SIGNATURE", "off")
    assert _accepted(_signed(signatures=[]))
    monkeypatch.setenv("BILLING_SIGNATURE", "required")
    settings.cache_clear()  # a new container, as it were
    assert not _accepted(_signed(signatures=[]))


def test_the_shared_secret_is_still_required_with_a_valid_signature(signing):
    event = _signed()
    event["headers"]["authorization"] = "Bearer wrong"
    with pytest.raises(WrongCredentials):
        auth.billing_credentials(_delivery(event))


@pytest.mark.parametrize("timestamp", ["²³⁴", "١٧٠٠٠٠٠٠٠٠", "9" * 40])
def test_a_timestamp_of_other_digits_or_absurd_length_is_refused_not_a_crash(signing, timestamp):
    event = _signed()
    event["headers"]["x-webhook-timestamp"] = timestamp
    with pytest.raises(MissingCredentials):
        auth.billing_credentials(_delivery(event))
