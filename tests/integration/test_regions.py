"""Every Bitrix24 region installs: the bodies Bitrix24's own docs print (tests/fixtures/bitrix24-docs),
posted as they are, on a default stack; and installs that leave their endpoints out."""

import json

import pytest

from local import samples
from local.fake_bitrix24 import Portal
from local.template import ROOT
from tests.integration.test_deliveries import post

DOCS = ROOT / "tests" / "fixtures" / "bitrix24-docs"
JSON = {"Content-Type": "application/json"}


def docs_body(name: str) -> dict:
    return json.loads((DOCS / f"{name}.json").read_text())


def portal_of(stack, body: dict) -> Portal:
    """The docs' portal on the fake Bitrix24: its app.info takes the body's access token, its OAuth
    server (any region's) names the body's member_id for the body's refresh token."""
    auth = body["auth"]
    portal = Portal(
        auth["access_token"], samples.APP_CODE, member_id=auth["member_id"], refresh_token=auth["refresh_token"]
    )
    stack.bitrix24.portals[auth["domain"]] = portal
    return portal


@pytest.fixture
def no_portal_installed(installations):
    installations.clear()  # the docs reuse the sample portal's member_id on another domain
    return installations


def test_the_ru_docs_onappinstall_is_confirmed_through_oauth_bitrix24_tech_and_stored(
    api, table, no_portal_installed, stack
):
    body = docs_body("ru-onappinstall")
    portal_of(stack, body)
    status, _, answer = post(api, "/bitrix24/app-install", json.dumps(body), JSON)
    assert (status, answer["status"]) == (200, "stored"), answer
    record = no_portal_installed.get(member_id=body["auth"]["member_id"])
    assert (
        record["domain"] == "some-domain.bitrix24.ru"
        and record["server_endpoint"] == "https://oauth.bitrix24.tech/rest/"
    )
    assert any(request.host.startswith("oauth.bitrix24.tech") for request in stack.bitrix24.requests)


def test_the_ru_docs_onappupdate_of_an_installed_portal_is_stored(api, table, no_portal_installed, stack):
    update = docs_body("ru-onappupdate")
    install = docs_body("ru-onappinstall")
    install["auth"]["member_id"] = update["auth"]["member_id"]
    install["ts"] = str(int(update["ts"]) - 3600)  # installed before it was updated (the docs print one ts)
    portal = portal_of(stack, install)
    assert post(api, "/bitrix24/app-install", json.dumps(install), JSON)[0] == 200
    # The tokens Bitrix24 issued since, which the update carries.
    portal.access_token, portal.refresh_token = update["auth"]["access_token"], update["auth"]["refresh_token"]
    status, _, answer = post(api, "/bitrix24/app-update", json.dumps(update), JSON)
    assert (status, answer["status"]) == (200, "stored"), answer
    record = no_portal_installed.get(member_id=update["auth"]["member_id"])
    assert record["app_version"] == "2.1.0"


def test_an_install_without_endpoints_takes_them_from_its_domain(api, table, no_portal_installed, stack):
    body = docs_body("ru-onappinstall")
    portal_of(stack, body)
    for name in ("client_endpoint", "server_endpoint"):
        del body["auth"][name]
    status, _, answer = post(api, "/bitrix24/app-install", json.dumps(body), JSON)
    assert (status, answer["status"]) == (200, "stored"), answer
    record = no_portal_installed.get(member_id=body["auth"]["member_id"])
    assert record["client_endpoint"] == "https://some-domain.bitrix24.ru/rest/"
    assert record["server_endpoint"] == "https://oauth.bitrix.info/rest/"
