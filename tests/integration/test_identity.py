"""Who can do what with which credential (docs/security.md, "Identity"): each row of that table
is a test here. member_ids are not secret, and any user of a portal holds an access token for it:
an identity is bound only when Bitrix24's OAuth server vouches for it."""

import pytest

from billing_webhooks.settings import Settings
from billing_webhooks.wire.credentials import token_sha256
from local import samples, template
from local.fake_bitrix24 import Portal
from tests.integration.test_installations import (
    ACCESS,
    DOMAIN,
    MEMBER,
    NEW_TOKEN,
    PORTALS,
    TOKEN,
    acme,  # noqa: F401 (fixture)
    deliver,
    lifecycle,
    payment,
)

EVIL = "evil.bitrix24.com"
EVIL_ACCESS, EVIL_TOKEN = "evil-access-token", "evil-application-token"


@pytest.fixture
def evil(stack) -> Portal:
    """The attacker's own portal: its app.info confirms the app for the attacker's access token."""
    portal = Portal(EVIL_ACCESS, samples.APP_CODE, member_id="evil-member", refresh_token="evil-refresh")
    stack.bitrix24.portals[EVIL] = portal
    return portal


def _claim(**auth) -> dict:
    """An install naming the victim's member_id from the attacker's portal."""
    return lifecycle(
        "app_install",
        token=EVIL_TOKEN,
        domain=EVIL,
        client_endpoint=f"https://{EVIL}/rest/",
        access_token=EVIL_ACCESS,
        **auth,
    )


def test_row_1_a_vouched_first_install_binds_the_member_id_and_earns_its_licence(api, table, installations, acme):
    assert deliver(api, "app_install", lifecycle("app_install"))[0] == 200
    record = installations.get(member_id=MEMBER)
    assert record["vouched"] is True and record["domain"] == DOMAIN and record["licence_status"] == "T"


def test_row_2_an_install_no_one_can_vouch_for_is_kept_without_a_licence(api, table, installations, acme):
    status, answer = deliver(api, "app_install", lifecycle("app_install", refresh_token=None))
    assert (status, answer["status"]) == (200, "stored")
    record = installations.get(member_id=MEMBER)
    assert record["vouched"] is False and "licence_status" not in record
    assert deliver(api, "app_payment", payment(ts=1466500000, STATUS="P", DAYS="3650"))[0] == 200
    assert "licence_status" not in installations.get(member_id=MEMBER)  # a payment earns it nothing either


def test_row_3_an_unvouched_claim_on_a_member_id_never_blocks_its_vouched_owner(api, table, installations, acme, evil):
    # The attack: the victim's member_id, the attacker's domain and access token, no refresh_token.
    assert deliver(api, "app_install", _claim(refresh_token=None))[0] == 200
    assert installations.get(member_id=MEMBER)["domain"] == EVIL
    # The real owner installs: vouched for, so it replaces the claim.
    status, answer = deliver(api, "app_install", lifecycle("app_install", ts=1466440000))
    assert (status, answer["status"]) == (200, "stored"), answer
    record = installations.get(member_id=MEMBER)
    assert record["domain"] == DOMAIN and record["vouched"] is True
    assert record["application_token_sha256"] == token_sha256(TOKEN)
    # The attacker's payment naming the victim's domain, with the attacker's token: refused.
    forged = payment(ts=1466500000, token=EVIL_TOKEN, STATUS="P", DAYS="3650")
    assert deliver(api, "app_payment", forged)[0] == 403
    assert installations.get(member_id=MEMBER)["licence_status"] == "T"


def test_row_3b_an_unvouched_claim_after_the_owner_is_bound_is_refused(api, table, installations, acme, evil):
    assert deliver(api, "app_install", lifecycle("app_install"))[0] == 200
    status, _ = deliver(api, "app_install", _claim(refresh_token=None, ts="1466440000"))
    assert status == 403
    assert installations.get(member_id=MEMBER)["domain"] == DOMAIN


def test_row_4_a_new_application_token_needs_bitrix24s_word_not_just_a_users_access_token(
    api, table, installations, acme
):
    assert deliver(api, "app_install", lifecycle("app_install"))[0] == 200
    for kind in ("app_install", "app_update"):  # any user of the portal holds an access token
        status, problem = deliver(api, kind, lifecycle(kind, ts=1466440000, token=NEW_TOKEN, refresh_token=None))
        assert status == 403 and "vouched" in problem["detail"], (kind, problem)
    assert installations.get(member_id=MEMBER)["application_token_sha256"] == token_sha256(TOKEN)
    # Vouched for (the portal's current refresh token), the same change is accepted.
    status, answer = deliver(api, "app_update", lifecycle("app_update", ts=1466440000, token=NEW_TOKEN))
    assert (status, answer["status"]) == (200, "stored"), answer
    assert installations.get(member_id=MEMBER)["application_token_sha256"] == token_sha256(NEW_TOKEN)


def test_row_4b_a_reinstall_keeping_its_token_needs_no_refresh_token(api, table, installations, acme):
    assert deliver(api, "app_install", lifecycle("app_install"))[0] == 200
    status, answer = deliver(api, "app_install", lifecycle("app_install", ts=1466440000, refresh_token=None))
    assert (status, answer["status"]) == (200, "stored"), answer
    assert installations.get(member_id=MEMBER)["vouched"] is True


def test_row_5_payments_and_uninstalls_count_only_on_the_installations_own_domain(api, table, installations, acme):
    assert deliver(api, "app_install", lifecycle("app_install"))[0] == 200
    elsewhere = {"domain": "victim.bitrix24.com", "client_endpoint": "https://victim.bitrix24.com/rest/"}
    body = payment(ts=1466500000, STATUS="P", DAYS="30")
    body["auth"].update(elsewhere)
    assert deliver(api, "app_payment", body)[0] == 403
    assert deliver(api, "app_uninstall", lifecycle("app_uninstall", ts=1466500000, **elsewhere))[0] == 403
    assert installations.get(member_id=MEMBER)["status"] == "installed"


def test_row_6_the_oauth_check_compares_the_portal_it_names_with_the_events_domain(
    api, table, installations, acme, stack
):
    # The event's refresh token is another portal's, of the same member_id: Bitrix24's OAuth server
    # names that member_id, but on other.bitrix24.com, not on the event's domain.
    stack.bitrix24.portals["other.bitrix24.com"] = Portal(
        "other-access", samples.APP_CODE, member_id=MEMBER, refresh_token="other-refresh"
    )
    acme.member_id = "someone-else"
    status, problem = deliver(api, "app_install", lifecycle("app_install", refresh_token="other-refresh"))
    assert status == 403 and "another portal" in problem["detail"]
    assert installations.get(member_id=MEMBER) is None


def test_row_8_an_ordinary_user_of_the_portal_cannot_set_its_application_token(api, table, installations, acme, stack):
    """Any user who opens the app receives a pair in its page (AUTH_ID, REFRESH_ID): enough for
    the OAuth server to vouch for the portal, but only an administrator's word changes the token."""
    assert deliver(api, "app_install", lifecycle("app_install"))[0] == 200
    for kind in ("app_update", "app_install"):
        pair = acme.user_pair(False, stack.clock.time())
        refreshes = acme.calls.get("refresh", 0)
        body = lifecycle(
            kind, ts=1466440000, token=NEW_TOKEN, access_token=pair["AUTH_ID"], refresh_token=pair["REFRESH_ID"]
        )
        status, problem = deliver(api, kind, body)
        assert status == 403 and "administrator" in problem["detail"], (kind, problem)
        assert acme.calls.get("refresh", 0) == refreshes  # the insider's refresh token was never spent
    record = installations.get(member_id=MEMBER)
    assert record["application_token_sha256"] == token_sha256(TOKEN)
    assert deliver(api, "app_payment", payment(ts=1466500000, STATUS="P", DAYS="30"))[0] == 200  # the owner's
    # An administrator's page pair changes it.
    pair = acme.user_pair(True, stack.clock.time())
    body = lifecycle(
        "app_update", ts=1466440000, token=NEW_TOKEN, access_token=pair["AUTH_ID"], refresh_token=pair["REFRESH_ID"]
    )
    assert deliver(api, "app_update", body)[0] == 200
    assert installations.get(member_id=MEMBER)["application_token_sha256"] == token_sha256(NEW_TOKEN)


def test_row_9_a_vouched_update_binds_the_domain_bitrix24_names_not_an_unvouched_claims(
    api, table, installations, acme, evil
):
    # The owner's install arrived unvouched (no refresh token); a stranger's unvouched claim on
    # the same member_id then wrote its own domain.
    assert deliver(api, "app_install", lifecycle("app_install", refresh_token=None))[0] == 200
    assert deliver(api, "app_install", _claim(refresh_token=None, ts="1466440000"))[0] == 200
    assert installations.get(member_id=MEMBER)["domain"] == EVIL
    # The owner's vouched update binds the member_id to the domain the OAuth server names.
    status, answer = deliver(api, "app_update", lifecycle("app_update", ts=1466450000))
    assert (status, answer["status"]) == (200, "stored"), answer
    record = installations.get(member_id=MEMBER)
    assert (record["domain"], record["vouched"]) == (DOMAIN, True)
    assert record["application_token_sha256"] == token_sha256(TOKEN)
    # From now on the owner's events count and the stranger's are refused.
    assert deliver(api, "app_payment", payment(ts=1466500000, STATUS="P", DAYS="30"))[0] == 200
    assert deliver(api, "app_install", _claim(refresh_token=None, ts="1466510000"))[0] == 403
    assert deliver(api, "app_install", lifecycle("app_install", ts=1466520000))[0] == 200


def test_row_10_an_install_from_every_zone_of_bitrix24s_cloud_is_stored(api, table, installations, stack):
    zones = template.parameter_default("Bitrix24DomainSuffixes").split(",")
    assert {"bitrix24.es", "bitrix24.com.br", "bitrix24.jp", "bitrix24.uk", "bitrix24.com.tr"} <= set(zones)
    for number, zone in enumerate(zones):
        domain, member_id = f"zone-{number}.{zone}", f"member-of-zone-{number}"
        stack.bitrix24.portals[domain] = PORTALS[domain] = Portal(
            f"access-{number}", samples.APP_CODE, member_id=member_id, refresh_token=f"refresh-{number}"
        )
        auth = {"domain": domain, "client_endpoint": f"https://{domain}/rest/", "member_id": member_id}
        body = lifecycle("app_install", access_token=f"access-{number}", refresh_token=f"refresh-{number}", **auth)
        status, answer = deliver(api, "app_install", body)
        assert (status, answer.get("status")) == (200, "stored"), (zone, answer)
        assert installations.get(member_id=member_id)["vouched"] is True, zone


def _oauth_requests(stack) -> int:
    return sum(1 for request in stack.bitrix24.requests if request.path.startswith("/oauth/token/"))


def test_row_11_strangers_cost_nothing_a_made_up_refresh_token_is_sent_to_bitrix24_once(
    api, table, installations, acme, evil, stack
):
    for attempt in range(3):
        status, problem = deliver(api, "app_install", _claim(refresh_token="made-up-refresh-token"))
        assert status == 403 and "refused" in problem["detail"], problem
        assert _oauth_requests(stack) == 1, attempt  # the vendor's credentials spent once, not per attempt
    # A portal nobody has: refused, nothing asked of the OAuth server.
    nowhere = {"domain": "nobody-here.bitrix24.com", "client_endpoint": "https://nobody-here.bitrix24.com/rest/"}
    status, problem = deliver(api, "app_install", lifecycle("app_install", member_id="m-nowhere", **nowhere))
    assert status == 403 and "No Bitrix24 portal" in problem["detail"], problem
    assert _oauth_requests(stack) == 1 and installations.get(member_id="m-nowhere") is None
    # The owner's genuine install is not held up by any of it.
    assert deliver(api, "app_install", lifecycle("app_install"))[0] == 200


def test_row_10b_a_self_hosted_portal_installs_once_bitrix24s_oauth_server_vouches_for_its_domain(
    api, table, installations, stack
):
    from billing_webhooks.jobs.portal_sync import sync_now
    from local.fake_bitrix24 import SELF_HOSTED_SUFFIX

    domain, member_id = f"crm.{SELF_HOSTED_SUFFIX}", "member-of-a-self-hosted-portal"
    portal = Portal("own-access", samples.APP_CODE, status="P", days=30, member_id=member_id, refresh_token="own-r")
    stack.bitrix24.portals[domain] = PORTALS[domain] = portal
    auth = {"domain": domain, "client_endpoint": f"https://{domain}/rest/", "member_id": member_id}
    # Without a refresh token nothing vouches for the domain: refused, and the host never called.
    status, problem = deliver(
        api, "app_install", lifecycle("app_install", access_token="own-access", refresh_token=None, **auth)
    )
    assert status == 403 and "self-hosted" in problem["detail"] and not portal.calls, problem
    # Another portal's refresh token names another domain: refused, the host never called.
    status, _ = deliver(
        api, "app_install", lifecycle("app_install", access_token="own-access", **auth, refresh_token="evil-refresh")
    )
    assert status == 403 and "app.info" not in portal.calls
    status, answer = deliver(
        api, "app_install", lifecycle("app_install", access_token="own-access", refresh_token="own-r", **auth)
    )
    assert (status, answer["status"]) == (200, "stored"), answer
    assert installations.get(member_id=member_id)["vouched"] is True
    assert sync_now([member_id])[0]["outcome"] == "ok"  # its licence is checked there too
    # Bound there, an update keeping its token needs no refresh token (its domain was vouched for).
    update = lifecycle("app_update", ts=1466450000, access_token="own-access", refresh_token=None, **auth)
    assert deliver(api, "app_update", update)[0] == 200


def test_the_layers_default_zones_are_the_templates():
    assert Settings.model_fields["bitrix24_domain_suffixes"].default == template.parameter_default(
        "Bitrix24DomainSuffixes"
    )


# What each read answer may hold, key by key (docs/accounts.md): anything else, under any name, fails.
PORTAL_KEYS = {
    "member_id",
    "domain",
    "status",
    "vouched",
    "app_version",
    "language_id",
    "installed_at",
    "uninstalled_at",
    "licence",
    "sync",
}
SYNC_KEYS = {
    "reachable",
    "unreachable_since",
    "unreachable_because",
    "pair_in_doubt",
    "cure",
    "last_checked_at",
    "last_outcome",
    "failures",
    "next_check_at",
}
LICENCE_KEYS = {
    "status",
    "payment_expired",
    "days",
    "paid_until",
    "licence",
    "source",
    "as_of",
    "state",
    "since",
    "until",
}
ACCOUNT_KEYS = {
    "account_id",
    "account_code",
    "currency",
    "language",
    "state",
    "trial",
    "open_invoices",
    "invoices",
    "products",
    "balances",
    "counts",
    "cursors",
}


def _strings(value) -> list[str]:
    if isinstance(value, dict):
        return [text for child in value.values() for text in _strings(child)] + list(value)
    if isinstance(value, list):
        return [text for child in value for text in _strings(child)]
    return [value] if isinstance(value, str) else []


def test_row_7_reads_answer_only_their_allowed_keys_and_nothing_derived_from_a_secret(api, table, installations, acme):
    import requests

    assert deliver(api, "app_install", lifecycle("app_install"))[0] == 200
    answer = requests.get(f"{api.url}/portals/{MEMBER}", timeout=10).json()
    assert set(answer) == PORTAL_KEYS and set(answer["licence"]) == LICENCE_KEYS and set(answer["sync"]) == SYNC_KEYS
    secrets = {TOKEN, ACCESS, token_sha256(TOKEN), token_sha256(ACCESS)}
    assert not secrets & set(_strings(answer))
    assert not [text for text in _strings(answer) if len(text) == 64 and all(c in "0123456789abcdef" for c in text)]
    account = requests.get(f"{api.url}/accounts/504", timeout=10)
    if account.status_code == 200:
        assert set(account.json()) == ACCOUNT_KEYS


def test_every_request_to_bitrix24_is_one_log_line_without_a_token(api, table, installations, acme):
    """Bitrix24's Market asks for the REST request and response logs (kept 3 days at least)."""
    import logging

    from billing_webhooks.observability import rest_log

    kept: list[logging.LogRecord] = []

    class Keep(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            kept.append(record)

    handler = Keep()
    logging.getLogger(rest_log().name).addHandler(handler)
    try:
        assert deliver(api, "app_install", lifecycle("app_install"))[0] == 200
    finally:
        logging.getLogger(rest_log().name).removeHandler(handler)
    lines = [vars(record) for record in kept]
    asked = [(line["method"], line["portal"], line["status"]) for line in lines]
    assert ("app.info", DOMAIN, "200") in asked and ("user.admin", DOMAIN, "200") in asked
    assert ("oauth/token", "oauth.bitrix.info", "200") in asked
    assert all(isinstance(line["duration_ms"], int) for line in lines)
    said = str(lines)
    assert not any(secret in said for secret in (ACCESS, TOKEN, acme.refresh_token, "local-app-client-secret"))
