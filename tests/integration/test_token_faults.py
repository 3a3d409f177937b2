"""A portal's pair survives Bitrix24's OAuth server being slow, losing an answer, or down at
install (domain/portal_tokens.py, domain/licence_sync.py, http/portal_confirmation.py): a pair is
never lost to a slow answer, a lost one is said ("tokens in doubt") and mended by an update, and an
install is never dropped for an OAuth outage."""

import secrets
import time

import pytest
import requests

from local import play
from local.replay import replay
from local.wire import php_form_encode
from tests.integration.test_licence_sync import sync
from tests.integration.test_rescue import rescue_queue  # noqa: F401 (fixture)

DAY = 86400


@pytest.fixture
def portal(stack, api):
    """A portal of the app, paid for 30 days, installed (vouched for) through the stack's API."""
    domain = f"faults-{secrets.token_hex(4)}.bitrix24.com"
    made = play.new_portal(stack.bitrix24, domain, paid_until=stack.clock.time() + 30 * DAY)
    assert play.post_lifecycle(api.url, stack.bitrix24, domain) == 200
    made.domain = domain  # type: ignore[attr-defined]
    return made


def post_install(api, body: dict) -> requests.Response:
    """An ONAPPINSTALL body posted as Bitrix24 posts it (a PHP form)."""
    return requests.post(
        f"{api.url}/bitrix24/app-install",
        data=php_form_encode(body),
        headers={"Content-Type": "application/x-www-form-urlencoded"},
        timeout=60,
    )


def view(api, member_id: str) -> dict:
    answer = requests.get(f"{api.url}/portals/{member_id}", timeout=10)
    assert answer.status_code == 200, answer.text
    return answer.json()


def test_a_refresh_answered_after_8_seconds_keeps_the_portal_reachable_and_its_licence_right(api, portal):
    portal.access_token_expired = True  # the next call needs a refresh
    portal.oauth_latency_ms = 8000
    refreshes = portal.calls.get("refresh", 0)
    assert sync(portal.member_id)["outcome"] == "ok"
    seen = view(api, portal.member_id)
    assert seen["sync"]["reachable"] and seen["licence"]["state"] == "active"
    assert portal.calls["refresh"] == refreshes + 1
    portal.oauth_latency_ms = 0
    portal.access_token_expired = True
    assert sync(portal.member_id)["outcome"] == "ok"  # the rotated pair was kept: the next refresh takes it


def test_a_refresh_whose_answer_was_lost_is_tokens_in_doubt_until_an_update_brings_a_new_pair(api, stack, portal):
    portal.access_token_expired = True
    portal.oauth = "lost"  # Bitrix24 rotates the pair; its answer never arrives
    assert sync(portal.member_id)["outcome"] == "failed"
    portal.oauth = "ok"
    outcome = sync(portal.member_id)
    assert outcome["outcome"] == "tokens in doubt", outcome
    seen = view(api, portal.member_id)
    assert seen["sync"]["pair_in_doubt"] is True and not seen["sync"]["reachable"]
    assert "reinstalls or updates" in seen["sync"]["cure"]
    assert seen["licence"]["state"] == "active"  # its known end stands meanwhile

    time.sleep(1.1)  # the update's ts: a second after the install's
    # The administrator updates the app: the same application token, a new refresh token.
    assert play.post_lifecycle(api.url, stack.bitrix24, portal.domain, "ONAPPUPDATE") == 200
    portal.access_token_expired = True
    assert sync(portal.member_id)["outcome"] == "ok"
    seen = view(api, portal.member_id)
    assert seen["sync"]["reachable"] and seen["sync"]["pair_in_doubt"] is False


def test_an_install_while_the_oauth_server_is_down_is_kept_and_vouched_for_by_a_later_sync(api, stack):
    domain = f"oauth-down-{secrets.token_hex(4)}.bitrix24.com"
    portal = play.new_portal(stack.bitrix24, domain, paid_until=stack.clock.time() + 30 * DAY)
    portal.oauth = "down"
    assert play.post_lifecycle(api.url, stack.bitrix24, domain) == 200  # Bitrix24 never resends an install
    seen = view(api, portal.member_id)
    assert seen["status"] == "installed" and seen["vouched"] is False and seen["licence"]["state"] == "unknown"
    assert sync(portal.member_id)["outcome"] == "failed"  # still down: tried again, backing off
    portal.oauth = "ok"
    assert sync(portal.member_id)["outcome"] == "ok"
    seen = view(api, portal.member_id)
    assert seen["vouched"] is True and seen["licence"]["state"] == "active" and seen["sync"]["reachable"]


@pytest.mark.parametrize("forged", ["access_token", "refresh_token"])
def test_an_install_with_a_made_up_token_is_refused_4xx_and_nothing_is_kept(api, stack, forged):
    domain = f"forged-{secrets.token_hex(4)}.bitrix24.com"
    portal = play.new_portal(stack.bitrix24, domain, paid_until=stack.clock.time() + 30 * DAY)
    body = play.lifecycle_body(stack.bitrix24, domain, "ONAPPINSTALL")
    body["auth"][forged] = f"made-up-{secrets.token_hex(8)}"
    answer = post_install(api, body)
    assert 400 <= answer.status_code < 500, answer.text
    assert requests.get(f"{api.url}/portals/{portal.member_id}", timeout=10).status_code == 404


def test_an_install_naming_a_portal_that_answers_404_is_refused_4xx(api, stack):
    domain = f"nowhere-{secrets.token_hex(4)}.bitrix24.com"
    play.new_portal(stack.bitrix24, domain, paid_until=stack.clock.time() + 30 * DAY)
    body = play.lifecycle_body(stack.bitrix24, domain, "ONAPPINSTALL")
    del stack.bitrix24.portals[domain]  # the fake answers 404 for a host it has no portal on
    answer = post_install(api, body)
    assert answer.status_code == 403, answer.text


def test_a_rotated_pair_whose_first_write_fails_is_written_again_before_it_is_used(api, portal, monkeypatch):
    from billing_webhooks.data import tokens
    from billing_webhooks.errors import ServiceUnavailable

    real, tries = tokens.put_refreshed, []

    def throttled_once(*args, **kwargs):
        tries.append(1)
        if len(tries) == 1:
            raise ServiceUnavailable("The portal's tokens cannot be reached right now; retry later.")
        return real(*args, **kwargs)

    monkeypatch.setattr(tokens, "put_refreshed", throttled_once)
    portal.access_token_expired = True
    assert sync(portal.member_id)["outcome"] == "ok" and len(tries) == 2
    portal.access_token_expired = True  # the next refresh presents the rotated refresh token: it was kept
    assert sync(portal.member_id)["outcome"] == "ok"


def test_a_refresh_that_lost_the_race_to_a_reinstall_leaves_the_reinstalls_pair_kept(api, stack, portal, monkeypatch):
    from billing_webhooks.data import bitrix24

    real = bitrix24.refresh_tokens
    time.sleep(1.1)  # the uninstall's ts: a second after the install's

    def reinstalled_meanwhile(*args, **kwargs):
        answer = real(*args, **kwargs)  # rotated at Bitrix24; before we keep it, the portal reinstalls
        monkeypatch.setattr(bitrix24, "refresh_tokens", real)
        assert play.uninstall(api.url, stack.bitrix24, portal.domain) == 200  # revokes the pair just issued
        time.sleep(1.1)
        assert play.post_lifecycle(api.url, stack.bitrix24, portal.domain, reinstall=True) == 200
        return answer

    monkeypatch.setattr(bitrix24, "refresh_tokens", reinstalled_meanwhile)
    portal.access_token_expired = True
    sync(portal.member_id)
    portal.access_token_expired = True
    assert sync(portal.member_id)["outcome"] == "ok"  # the reinstall's pair was kept, not the revoked one


def test_a_refresh_naming_another_portal_is_neither_kept_nor_used(api, portal):
    from billing_webhooks.data import tokens

    before = tokens.get(portal.member_id)
    portal.access_token_expired = True
    real_member = portal.member_id
    portal.member_id = "f" * 32  # the OAuth server names another portal for these tokens
    asked = portal.calls.get("app.info", 0)
    try:
        assert sync(real_member)["outcome"] == "failed"
    finally:
        portal.member_id = real_member
    assert portal.calls.get("app.info", 0) == asked  # refused (expired_token), and never asked with their tokens
    assert tokens.get(real_member)["sealed"] == before["sealed"]


def test_two_checks_racing_a_slow_refresh_make_one_refresh_and_both_use_its_pair(api, portal):
    import threading

    portal.access_token_expired = True
    portal.oauth_latency_ms = 2500  # the refresh takes longer than a second: a lease must outlast it
    refreshes, outcomes = portal.calls.get("refresh", 0), []
    from billing_webhooks.domain import licence_sync

    # Two containers at once (one function's container takes one event at a time).
    check = lambda: outcomes.append(licence_sync.sync_portal(portal.member_id)["outcome"])  # noqa: E731
    racers = [threading.Thread(target=check) for _ in range(2)]
    for racer in racers:
        racer.start()
    for racer in racers:
        racer.join(60)
    assert outcomes == ["ok", "ok"] and portal.calls["refresh"] == refreshes + 1


@pytest.mark.parametrize("uninstall", ["delivered", "lost"])
@pytest.mark.parametrize("failing", ["oauth", "portal"])
def test_a_reinstall_while_bitrix24_fails_is_kept_and_vouched_for(
    api,
    stack,
    portal,
    rescue_queue,  # noqa: F811
    failing,
    uninstall,
):
    time.sleep(1.1)  # each event's ts a second after the one before
    play.uninstall(api.url, stack.bitrix24, portal.domain, delivered=uninstall == "delivered")
    time.sleep(1.1)
    if failing == "oauth":
        portal.oauth = "down"  # the new application token cannot be vouched for now
    else:
        portal.fail_rate = 1  # the portal answers app.info 503: it does not confirm now
    # A member_id Bitrix24 vouched for stays bound, installed or not: the new application token
    # waits for the vouching, parked with its refresh token, and is vouched for on replay.
    assert play.post_lifecycle(api.url, stack.bitrix24, portal.domain, reinstall=True) == 502
    portal.oauth, portal.fail_rate = "ok", 0
    assert replay() == {"replayed": 1, "refused": 0, "deferred": 0, "dead_lettered": 0}
    portal.access_token_expired = True
    assert sync(portal.member_id)["outcome"] == "ok"
    seen = view(api, portal.member_id)
    assert seen["status"] == "installed" and seen["vouched"] is True and seen["sync"]["reachable"]
    assert seen["licence"]["state"] == "active"


def test_an_install_carrying_another_portals_refresh_token_is_refused_on_replay_and_the_pair_kept(
    api,
    stack,
    portal,
    rescue_queue,  # noqa: F811
):
    other = play.new_portal(stack.bitrix24, f"other-{secrets.token_hex(4)}.bitrix24.com")
    time.sleep(1.1)
    body = play.lifecycle_body(stack.bitrix24, portal.domain, "ONAPPINSTALL")
    body["auth"]["application_token"] = secrets.token_hex(16)  # a swap of the bound portal's token
    body["auth"]["refresh_token"] = other.user_pair(True, stack.clock.time())["REFRESH_ID"]
    other.oauth = "down"  # it cannot be vouched for now: kept beside the portal's pair, parked
    answer = post_install(api, body)
    assert answer.status_code == 502, answer.text
    other.oauth = "ok"
    assert replay() == {"replayed": 0, "refused": 1, "deferred": 0, "dead_lettered": 0}  # it names another portal
    portal.access_token_expired = True
    assert sync(portal.member_id)["outcome"] == "ok"  # the kept pair was never touched
    seen = view(api, portal.member_id)
    assert seen["sync"]["reachable"] and seen["vouched"] is True
