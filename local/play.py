"""Playing Bitrix24 toward the local stack: a portal of the fake Bitrix24 installs the app, as a
real one would (its administrator's pair in the ONAPPINSTALL it posts, its own application
token, the instant on the stack's clock). Used by the tests and the simulated year."""

import secrets
from typing import Any

import requests

from local.fake_bitrix24 import FakeBitrix24, Portal
from local.wire import php_form_encode


def new_portal(
    fake: FakeBitrix24, domain: str, *, paid_until: float | None = None, trial_until: float | None = None
) -> Portal:
    """A portal of the app on the fake, with a licence ending on the clock, not yet installed."""
    portal = Portal(
        access_token=f"access-{secrets.token_hex(12)}",
        code=fake.app_code,
        member_id=secrets.token_hex(16),
        application_token=secrets.token_hex(16),
        paid_until=paid_until,
        trial_until=trial_until,
        status="P" if paid_until is not None else "T",
    )
    fake.portals[domain] = portal
    return portal


def lifecycle_body(fake: FakeBitrix24, domain: str, event: str, **data: Any) -> dict[str, Any]:
    """ONAPPINSTALL / ONAPPUPDATE as the portal posts it: its administrator's fresh pair (install
    and update carry one), its application token, `ts` now on the clock."""
    portal, now = fake.portals[domain], fake.clock.time()
    pair = portal.user_pair(True, now)  # a chain of its own: refreshed, it goes on independently
    auth = {
        "access_token": pair["AUTH_ID"],
        "expires": str(int(now) + pair["AUTH_EXPIRES"]),
        "expires_in": str(pair["AUTH_EXPIRES"]),
        "scope": "crm",
        "domain": domain,
        "server_endpoint": "https://oauth.bitrix.info/rest/",
        "status": "S",
        "client_endpoint": f"https://{domain}/rest/",
        "member_id": portal.member_id,
        "user_id": "1",
        "refresh_token": pair["REFRESH_ID"],
        "application_token": portal.application_token,
    }
    defaults = {"VERSION": "1", "ACTIVE": "Y", "INSTALLED": "Y", "LANGUAGE_ID": "en"}
    return {"event": event, "event_handler_id": "12", "data": defaults | data, "ts": str(int(now)), "auth": auth}


PATHS = {
    "ONAPPINSTALL": "/bitrix24/app-install",
    "ONAPPUPDATE": "/bitrix24/app-update",
    "ONAPPUNINSTALL": "/bitrix24/app-uninstall",
}


def _post(api_url: str, event: str, body: dict[str, Any]) -> int:
    answer = requests.post(
        f"{api_url}{PATHS[event]}",
        data=php_form_encode(body),
        headers={"Content-Type": "application/x-www-form-urlencoded"},
        timeout=60,
    )
    return answer.status_code


def post_lifecycle(
    api_url: str, fake: FakeBitrix24, domain: str, event: str = "ONAPPINSTALL", *, reinstall: bool = False
) -> int:
    """The portal posts its install or update to the stack; the HTTP status it got. A reinstall
    comes with a new application token, as Bitrix24 issues one per install."""
    portal = fake.portals[domain]
    if reinstall:
        portal.application_token = secrets.token_hex(16)
    portal.installed = True
    return _post(api_url, event, lifecycle_body(fake, domain, event))


def uninstall(api_url: str, fake: FakeBitrix24, domain: str, *, delivered: bool = True) -> int | None:
    """The app is uninstalled from the portal: every token it issued for the app is revoked, and
    ONAPPUNINSTALL is posted (or lost: None)."""
    portal, now = fake.portals[domain], fake.clock.time()
    portal.installed = False
    portal.revoke()
    if not delivered:
        return None
    body = {
        "event": "ONAPPUNINSTALL",
        "event_handler_id": "12",
        "data": {"LANGUAGE_ID": "en", "CLEAN": "0"},
        "ts": str(int(now)),
        "auth": {
            "domain": domain,
            "server_endpoint": "https://oauth.bitrix.info/rest/",
            "client_endpoint": f"https://{domain}/rest/",
            "member_id": portal.member_id,
            "application_token": portal.application_token,
        },
    }
    return _post(api_url, "ONAPPUNINSTALL", body)
