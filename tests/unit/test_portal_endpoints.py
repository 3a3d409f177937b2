"""No request is ever steered off the portal named by the event: the checks before any call."""

import pytest

from billing_webhooks.data import bitrix24 as portal
from billing_webhooks.errors import WrongCredentials

DOMAIN = "acme.bitrix24.com"


def test_the_portals_own_rest_endpoint_gives_its_app_info_url():
    assert portal.app_info_url(DOMAIN, "https://acme.bitrix24.com/rest/") == "https://acme.bitrix24.com/rest/app.info"
    assert portal.app_info_url("ACME.Bitrix24.com", "https://acme.bitrix24.com:443/rest") == (
        "https://acme.bitrix24.com/rest/app.info"
    )


@pytest.mark.parametrize(
    ("domain", "endpoint"),
    [
        (DOMAIN, "http://acme.bitrix24.com/rest/"),  # not https
        (DOMAIN, "https://evil.example.com/rest/"),  # another host than auth.domain
        (DOMAIN, "https://other.bitrix24.com/rest/"),  # another portal
        ("evil.example.com", "https://evil.example.com/rest/"),  # not on an allowed suffix
        ("bitrix24.com.evil.io", "https://bitrix24.com.evil.io/rest/"),
        ("evilbitrix24.com", "https://evilbitrix24.com/rest/"),  # suffix without the dot boundary
        ("127.0.0.1", "https://127.0.0.1/rest/"),  # IP literals
        ("[::1]", "https://[::1]/rest/"),
        ("169.254.169.254", "https://169.254.169.254/rest/"),
        ("2130706433", "https://2130706433/rest/"),
        (DOMAIN, "https://acme.bitrix24.com@evil.example.com/rest/"),  # userinfo trick
        (DOMAIN, "https://user:pw@acme.bitrix24.com/rest/"),
        (DOMAIN, "https://acme.bitrix24.com:8443/rest/"),  # another port
        (DOMAIN, "https://acme.bitrix24.com/rest/../admin/"),  # another path
        (DOMAIN, "https://acme.bitrix24.com/rest/?next=http://evil"),
        (DOMAIN, "https://acme.bitrix24.com:99999/rest/"),  # unreadable port
        (DOMAIN, None),
        (None, "https://acme.bitrix24.com/rest/"),
    ],
)
def test_an_endpoint_off_the_events_portal_is_refused_before_any_call(domain, endpoint):
    with pytest.raises(WrongCredentials):
        portal.app_info_url(domain, endpoint)


def test_the_allowed_suffixes_are_configurable(monkeypatch):
    monkeypatch.setenv("BITRIX24_DOMAIN_SUFFIXES", "crm.example.org, .bitrix24.de")
    assert portal.app_info_url("b24.crm.example.org", "https://b24.crm.example.org/rest/")
    with pytest.raises(WrongCredentials):
        portal.app_info_url(DOMAIN, "https://acme.bitrix24.com/rest/")


def test_a_name_no_portal_has_or_a_redirect_is_no_portal_but_a_dns_outage_is_an_outage():
    import socket
    from urllib.error import HTTPError, URLError

    from billing_webhooks.data import bitrix24

    for gone in (
        URLError(socket.gaierror(socket.EAI_NONAME, "Name or service not known")),
        HTTPError("https://x.bitrix24.com/rest/app.info", 302, "Found", {}, None),  # type: ignore[arg-type]
        HTTPError("https://x.bitrix24.com/rest/app.info", 404, "Not Found", {}, None),  # type: ignore[arg-type]
    ):
        with pytest.raises(bitrix24.NoSuchPortal):
            bitrix24._raise_as_answered(gone, "The portal's app.info")
    passing = URLError(socket.gaierror(socket.EAI_AGAIN, "Temporary failure in name resolution"))
    with pytest.raises(bitrix24.PortalUnavailable) as outage:
        bitrix24._raise_as_answered(passing, "The portal's app.info")
    assert not isinstance(outage.value, bitrix24.NoSuchPortal)
