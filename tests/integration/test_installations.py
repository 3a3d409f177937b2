"""The app lifecycle over real HTTP: a fake Bitrix24 portal (TLS, on 127.0.0.1) answers app.info;
every portal's events are checked against the token its installation stored."""

import copy
import os
import sys
import threading
import time
from datetime import UTC, datetime

import boto3
import pytest

from billing_webhooks.data.toolkit import to_item
from billing_webhooks.domain.lifecycle import installation_record
from billing_webhooks.models.bitrix24 import AppInfo, AppInstallEvent
from billing_webhooks.wire.credentials import token_sha256
from local import samples
from local.fake_bitrix24 import Portal
from local.wire import php_form_encode
from tests.integration.test_deliveries import FORM, post

DOMAIN = "acme.bitrix24.com"
MEMBER = "0f1e2d3c4b5a69788796a5b4c3d2e1f0"
TOKEN, NEW_TOKEN, ACCESS = "acme-application-token-1", "acme-application-token-2", "acme-access-token"
REFRESH = "acme-refresh-token"


def lifecycle(kind: str, *, ts: int | None = None, token: str = TOKEN, **auth: str) -> dict:
    """A sample lifecycle body moved to the acme portal, with `auth` fields overridden."""
    body = copy.deepcopy(samples.BITRIX24_BODIES[kind]())
    body["auth"].update(
        {
            "domain": DOMAIN,
            "client_endpoint": f"https://{DOMAIN}/rest/",
            "member_id": MEMBER,
            "application_token": token,
        }
    )
    if "access_token" in body["auth"]:
        body["auth"]["access_token"] = ACCESS
        body["auth"]["refresh_token"] = REFRESH
    body["auth"].update(auth)
    body["auth"] = {name: value for name, value in body["auth"].items() if value is not None}
    if ts is not None:
        body["ts"] = str(ts)
    return body


# The fake portals by domain: a real event carries the installing user's current refresh token
# (Bitrix24's are single-use), so deliver() presents the portal's current one for REFRESH.
PORTALS: dict[str, Portal] = {}


def deliver(api, kind: str, body: dict) -> tuple[int, dict]:
    auth = body.get("auth", {})
    if auth.get("refresh_token") == REFRESH and auth.get("domain") in PORTALS:
        body = {**body, "auth": {**auth, "refresh_token": PORTALS[auth["domain"]].refresh_token}}
    status, _, answer = post(api, f"/bitrix24/{kind.replace('_', '-')}", php_form_encode(body), FORM)
    return status, answer


@pytest.fixture
def acme(stack) -> Portal:
    portal = Portal(ACCESS, samples.APP_CODE, status="T", days=14, member_id=MEMBER, refresh_token=REFRESH)
    stack.bitrix24.portals[DOMAIN] = PORTALS[DOMAIN] = portal
    return portal


@pytest.fixture
def installed_acme(api, table, installations, acme) -> Portal:
    assert deliver(api, "app_install", lifecycle("app_install"))[0] == 200
    return acme


def payment(ts: int = 1466439714, token: str = TOKEN, **data: str) -> dict:
    body = lifecycle("app_payment", token=token, ts=ts)
    body["data"].update(data)
    return body


def test_an_install_confirmed_by_the_portal_keeps_one_record_and_its_payments_are_accepted(
    api, table, installations, acme, stack
):
    status, answer = deliver(api, "app_install", lifecycle("app_install"))
    assert (status, answer["status"], answer["type"]) == (200, "stored", "ONAPPINSTALL")
    asked = stack.bitrix24.requests[0]
    assert (asked.host, asked.path, asked.auth) == (f"{DOMAIN}:443", "/rest/app.info", ACCESS)

    record = installations.get(member_id=MEMBER)
    assert record["status"] == "installed" and record["domain"] == DOMAIN
    assert record["client_endpoint"] == f"https://{DOMAIN}/rest/" and record["app_version"] == 1
    assert record["application_token_sha256"] == token_sha256(TOKEN)
    assert TOKEN not in str(record) and ACCESS not in str(record)
    assert record["licence_status"] == "T" and record["days"] == 14 and record["installed_at"].endswith("Z")

    status, answer = deliver(api, "app_payment", payment(DAYS="30", STATUS="P"))
    assert (status, answer["status"]) == (200, "stored")
    record = installations.get(member_id=MEMBER)
    assert (record["licence_status"], record["payment_expired"], record["days"]) == ("P", "N", 30)
    assert record["paid_until"] == "2016-07-20"  # ts 2016-06-20 + 30 days
    assert {item["notification_type"] for item in table.items()} == {"ONAPPINSTALL", "ONAPPPAYMENT"}


def test_a_forged_token_is_403_and_nothing_is_stored(api, table, installed_acme):
    before = table.items()
    status, answer = deliver(api, "app_payment", payment(token="forged-token"))
    assert status == 403 and answer["status"] == 403
    assert table.items() == before


def test_an_unknown_portal_is_403_and_nothing_is_stored(api, table, installations):
    status, _ = deliver(api, "app_payment", payment())  # acme never installed, not in the secret map
    assert status == 403 and table.items() == []


def test_an_update_confirmed_by_the_portal_replaces_the_token(api, table, installations, installed_acme):
    status, answer = deliver(api, "app_update", lifecycle("app_update", token=NEW_TOKEN))
    assert (status, answer["status"]) == (200, "stored")
    record = installations.get(member_id=MEMBER)
    assert record["application_token_sha256"] == token_sha256(NEW_TOKEN) and record["app_version"] == 2
    assert deliver(api, "app_payment", payment(token=TOKEN))[0] == 403
    assert deliver(api, "app_payment", payment(token=NEW_TOKEN))[0] == 200


def test_an_update_for_a_portal_never_installed_is_403(api, table, installations, acme):
    assert deliver(api, "app_update", lifecycle("app_update"))[0] == 403
    assert installations.get(member_id=MEMBER) is None and table.items() == []


def test_after_uninstall_the_portals_events_are_403(api, table, installations, installed_acme):
    status, answer = deliver(api, "app_uninstall", lifecycle("app_uninstall"))
    assert (status, answer["status"]) == (200, "stored")
    record = installations.get(member_id=MEMBER)
    assert record["status"] == "uninstalled" and record["uninstalled_at"].endswith("Z")
    assert deliver(api, "app_payment", payment())[0] == 403
    assert deliver(api, "app_uninstall", lifecycle("app_uninstall")) == (200, {**answer, "status": "duplicate"})


def test_an_uninstall_with_a_wrong_token_changes_nothing(api, table, installations, installed_acme):
    assert deliver(api, "app_uninstall", lifecycle("app_uninstall", token="forged"))[0] == 403
    assert installations.get(member_id=MEMBER)["status"] == "installed"


def test_a_reinstall_after_uninstall_is_believed_again(api, table, installations, installed_acme):
    deliver(api, "app_uninstall", lifecycle("app_uninstall"))
    assert deliver(api, "app_install", lifecycle("app_install", ts=1466441000, token=NEW_TOKEN))[0] == 200
    assert installations.get(member_id=MEMBER)["status"] == "installed"
    assert deliver(api, "app_payment", payment(ts=1466441100, token=NEW_TOKEN))[0] == 200


@pytest.mark.parametrize(
    ("change", "status"),
    [
        ({"code": "someone.elses_app"}, 403),
        ({"installed": False}, 403),
        ({"answer": "error"}, 403),  # Bitrix24's invalid_token: a credential refused, not an outage
        ({"access_token": "another-token"}, 403),  # the portal refuses the token we were given
        ({"answer": "slow"}, 502),
    ],
    ids=["wrong-code", "not-installed", "error", "bad-access-token", "slow"],
)
def test_an_install_the_portal_does_not_confirm_is_refused_and_not_stored(
    api, table, installations, acme, monkeypatch, change, status
):
    monkeypatch.setenv("BITRIX24_PORTAL_TIMEOUT_SECONDS", "0.5")
    for name, value in change.items():
        setattr(acme, name, value)
    got, answer = deliver(api, "app_install", lifecycle("app_install"))
    assert (got, answer["status"]) == (status, status)
    assert installations.get(member_id=MEMBER) is None and table.items() == []


def test_an_install_without_an_access_token_is_401(api, table, installations, acme, stack):
    assert deliver(api, "app_install", lifecycle("app_install", access_token=None))[0] == 401
    assert stack.bitrix24.requests == []


def test_a_portal_installed_on_one_domain_is_not_moved_by_an_install_naming_its_member_id(
    api, table, installations, installed_acme, stack
):
    stack.bitrix24.portals["evil.bitrix24.com"] = Portal("evil-access", samples.APP_CODE)
    body = lifecycle(
        "app_install",
        ts=1466449999,
        token="evil-token",
        domain="evil.bitrix24.com",
        client_endpoint="https://evil.bitrix24.com/rest/",
        access_token="evil-access",
    )
    assert deliver(api, "app_install", body)[0] == 403
    assert installations.get(member_id=MEMBER)["application_token_sha256"] == token_sha256(TOKEN)


def test_an_older_payment_never_overwrites_a_newer_licence_state(api, table, installations, installed_acme):
    assert deliver(api, "app_payment", payment(ts=1466500000, STATUS="P", DAYS="300"))[0] == 200
    assert deliver(api, "app_payment", payment(ts=1466400000, STATUS="T", DAYS="3"))[0] == 200
    record = installations.get(member_id=MEMBER)
    assert (record["licence_status"], record["days"], record["licence_ts"]) == ("P", 300, 1466500000)
    assert len(table.items()) == 3  # install + both payments, each stored once


def test_a_payment_without_days_clears_the_paid_until(api, table, installations, installed_acme):
    deliver(api, "app_payment", payment(ts=1466500000, DAYS="30"))
    deliver(api, "app_payment", payment(ts=1466600000, STATUS="F", DAYS=""))
    record = installations.get(member_id=MEMBER)
    assert record["licence_status"] == "F" and "days" not in record and "paid_until" not in record


def _handmade_payment(token: str = samples.HANDMADE_APPLICATION_TOKEN) -> str:
    body = samples.bitrix24_payment_body()
    body["auth"].update({"member_id": samples.HANDMADE_MEMBER_ID, "application_token": token})
    return php_form_encode(body)


def test_a_portal_installed_by_hand_is_checked_against_the_fallback_secret(api, table, installations):
    before = installations.items()
    status, _, answer = post(api, "/bitrix24/app-payment", _handmade_payment(), FORM)
    assert (status, answer["status"]) == (200, "stored")
    assert installations.items() == before  # the fallback has no record to refresh
    assert post(api, "/bitrix24/app-payment", _handmade_payment("forged"), FORM)[0] == 403


def test_the_fallback_secret_wins_over_a_record_it_did_not_write(api, table, installations, acme):
    # An install naming a portal installed by hand is refused, whichever portal confirms it ...
    takeover = lifecycle("app_install", member_id=samples.HANDMADE_MEMBER_ID)
    status, problem = deliver(api, "app_install", takeover)
    assert status == 403 and "fallback secret" in problem["detail"]
    assert installations.get(member_id=samples.HANDMADE_MEMBER_ID) is None
    # ... and a record for it, however it got there, changes nothing: the hand-installed token decides.
    record = installation_record(
        AppInstallEvent.model_validate(takeover),
        AppInfo.model_validate(samples.sample_app_info()),
        token_sha256(takeover["auth"]["application_token"]),
        datetime.now(UTC),
    )
    boto3.client("dynamodb", endpoint_url=os.environ["AWS_ENDPOINT_URL_DYNAMODB"]).put_item(
        TableName=installations.name, Item=to_item(record)
    )
    assert post(api, "/bitrix24/app-payment", _handmade_payment(), FORM)[0] == 200
    assert post(api, "/bitrix24/app-payment", _handmade_payment(TOKEN), FORM)[0] == 403


class OutboundConnections:
    """Every socket connect and DNS lookup this process makes while recording (an audit hook:
    it sees urllib, ssl and anything else, whoever opens the socket)."""

    hooked = False
    recording: list | None = None
    lock = threading.Lock()

    @classmethod
    def audit(cls, name: str, args: tuple) -> None:
        if cls.recording is not None and name in ("socket.connect", "socket.getaddrinfo"):
            address = args[1] if name == "socket.connect" else args[:2]
            with cls.lock:
                cls.recording.append((name, address))


@pytest.fixture
def outbound(stack):
    if not OutboundConnections.hooked:
        sys.addaudithook(OutboundConnections.audit)
        OutboundConnections.hooked = True
    OutboundConnections.recording = []
    yield OutboundConnections.recording
    OutboundConnections.recording = None


def _ports(stack) -> set[int]:
    return {stack.dynamodb.port, stack.moto.port}


@pytest.mark.parametrize(
    "auth",
    [
        {"client_endpoint": "https://evil.example.com/rest/"},
        {"client_endpoint": "https://169.254.169.254/rest/"},
        {"client_endpoint": f"http://{DOMAIN}/rest/"},
        {"domain": "127.0.0.1", "client_endpoint": "https://127.0.0.1/rest/"},
        {"domain": "evil.example.com", "client_endpoint": "https://evil.example.com/rest/"},
        {"client_endpoint": f"https://{DOMAIN}@evil.example.com/rest/"},
    ],
    ids=["other-host", "metadata-ip", "http", "ip-literal", "other-suffix", "userinfo"],
)
def test_an_install_pointing_anywhere_but_its_portal_never_leaves_the_process(
    functions, table, installations, acme, stack, outbound, auth
):
    from local.server import http_api_event
    from tests.conftest import invoke

    event = http_api_event(
        "POST", "/bitrix24/app-install", "", FORM, php_form_encode(lifecycle("app_install", **auth)).encode()
    )
    status, _, _ = invoke(functions["app_install"], event)
    assert status == 403
    # Nothing the event names is called. A domain on none of Bitrix24's cloud zones may be a
    # self-hosted portal: Bitrix24's own OAuth server is asked whose it is first (here: acme's, so
    # refused); the domain itself, never.
    asked = [request.host for request in stack.bitrix24.requests]
    assert asked == (["oauth.bitrix.info:443"] if auth.get("domain") == "evil.example.com" else [])
    local = _ports(stack) | ({stack.bitrix24.port} if asked else set())  # the OAuth server: the fake here
    assert [(name, address) for name, address in outbound if address[1] not in local] == []
    assert installations.get(member_id=MEMBER) is None


def test_a_redirect_from_the_portal_is_not_followed(functions, table, installations, acme, stack, outbound):
    from local.server import http_api_event
    from tests.conftest import invoke

    acme.answer = "redirect"
    event = http_api_event(
        "POST", "/bitrix24/app-install", "", FORM, php_form_encode(lifecycle("app_install")).encode()
    )
    status, _, problem = invoke(functions["app_install"], event)
    # No portal's REST answers there: refused (a stranger's made-up portal costs no 5xx), not parked.
    assert status == 403 and "HTTP 302" in problem["detail"]
    assert stack.bitrix24.hosts_asked() == [f"{DOMAIN}:443"]  # only the portal itself, once
    allowed = _ports(stack) | {stack.bitrix24.port}
    assert [(name, address) for name, address in outbound if address[1] not in allowed] == []
    assert installations.get(member_id=MEMBER) is None


def test_an_install_whose_tokens_belong_to_another_portal_is_refused(api, table, installations, acme, stack):
    acme.member_id = "another-portals-member-id"  # what Bitrix24's OAuth server says the tokens are
    status, problem = deliver(api, "app_install", lifecycle("app_install"))
    assert status == 403 and "belong to another portal" in problem["detail"]
    assert installations.get(member_id=MEMBER) is None and table.items() == []
    oauth = [request for request in stack.bitrix24.requests if request.host == "oauth.bitrix.info:443"]
    assert len(oauth) == 1 and "client_secret=local-app-client-secret" in oauth[0].path


def test_without_the_apps_oauth_credentials_an_install_is_believed_on_app_info_and_counted(
    api, table, installations, acme, stack, monkeypatch, capsys
):
    from billing_webhooks.data import secrets
    from billing_webhooks.settings import settings

    real = secrets.json_secret
    monkeypatch.setattr(
        secrets,
        "json_secret",
        lambda name: (
            {"client_id": "", "client_secret": ""} if name == settings().bitrix24_app_credentials_id else real(name)
        ),
    )
    acme.member_id = "not-asked"
    assert deliver(api, "app_install", lifecycle("app_install"))[1]["status"] == "stored"
    assert all(request.host != "oauth.bitrix.info:443" for request in stack.bitrix24.requests)
    assert '"MemberUnverified":[1.0]' in capsys.readouterr().out


def test_the_php_sdks_own_install_fixture_is_believed_on_app_info_without_a_refresh_token(
    api, table, installations, acme, capsys
):
    # b24phpsdk tests/Unit/Services/RemoteEventsFactoryTest.php: an ONAPPINSTALL with an access
    # token and no refresh token (values moved to the acme portal).
    body = {
        "event": "ONAPPINSTALL",
        "event_handler_id": "1",
        "data": {"VERSION": "1", "LANGUAGE_ID": "en"},
        "ts": "1762089975",
        "auth": {
            "access_token": ACCESS,
            "expires": "1762093575",
            "expires_in": "3600",
            "scope": "crm,placement,user_brief",
            "domain": DOMAIN,
            "server_endpoint": "https://oauth.bitrix.info/rest/",
            "status": "L",
            "client_endpoint": f"https://{DOMAIN}/rest/",
            "member_id": MEMBER,
            "user_id": "1",
            "application_token": TOKEN,
        },
    }
    status, answer = deliver(api, "app_install", body)
    assert (status, answer["status"]) == (200, "stored")
    assert installations.get(member_id=MEMBER)["status"] == "installed"
    assert '"MemberUnverified":[1.0]' in capsys.readouterr().out


def _kept_of_the_portal(dynamodb) -> dict[str, list[dict]]:
    from tests.conftest import Table

    tables = {
        "InstallationsTable": ("member_id",),
        "PortalTokensTable": ("member_id",),
        "EntitlementsTable": ("member_id",),
        "NotificationsTable": ("notification_id", "notification_type"),
    }
    return {
        name: [
            item
            for item in Table(dynamodb, name, key).items()
            if item.get("member_id") == MEMBER or item.get("account_key") == f"bitrix24#{MEMBER}"
        ]
        for name, key in tables.items()
    }


def test_an_uninstall_destroys_the_portals_kept_tokens_at_once(api, table, installations, acme, dynamodb):
    assert deliver(api, "app_install", lifecycle("app_install"))[0] == 200
    assert _kept_of_the_portal(dynamodb)["PortalTokensTable"]  # vouched: its pair kept, sealed
    body = lifecycle("app_uninstall", ts=1466500000)
    body["data"]["CLEAN"] = "0"
    assert deliver(api, "app_uninstall", body)[0] == 200
    kept = _kept_of_the_portal(dynamodb)
    assert kept["PortalTokensTable"] == []
    assert (
        kept["InstallationsTable"][0]["status"] == "uninstalled" and "licence_status" in kept["InstallationsTable"][0]
    )


def test_an_uninstall_with_clean_leaves_only_the_portals_audit_record(
    api, table, installations, acme, dynamodb, installation_stream
):
    assert deliver(api, "app_install", lifecycle("app_install"))[0] == 200
    assert deliver(api, "app_payment", payment(ts=1466450000, STATUS="P", DAYS="30"))[0] == 200
    body = lifecycle("app_uninstall", ts=1466500000)
    body["data"]["CLEAN"] = "1"
    status, answer = deliver(api, "app_uninstall", body)
    assert status == 200, answer
    time.sleep(3)  # the installation's stream has decided what it would: nothing is kept for it
    kept = _kept_of_the_portal(dynamodb)
    assert (kept["PortalTokensTable"], kept["EntitlementsTable"], kept["NotificationsTable"]) == ([], [], [])
    [audit] = kept["InstallationsTable"]
    assert set(audit) == {
        "member_id",
        "domain",
        "status",
        "vouched",
        "installed_at",
        "uninstalled_at",
        "lifecycle_ts",
        "purged_at",
    }
    assert (audit["domain"], audit["status"]) == (DOMAIN, "uninstalled")
    # Whatever moves later (a check, an account naming it) keeps nothing for it either.
    from billing_webhooks.domain import entitlement_updates, links

    entitlement_updates.recompute(MEMBER)
    links.account_moved(880999, MEMBER)
    assert _kept_of_the_portal(dynamodb)["EntitlementsTable"] == []
    # Its identity stays bound: a claim from another domain is still refused; the owner reinstalls.
    assert deliver(api, "app_install", lifecycle("app_install", ts=1466600000))[0] == 200
