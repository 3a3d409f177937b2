"""What an operator lists and reads (`billing-webhooks portals list`, `portals story`,
`quarantine list` and `show`), over the stack's tables."""

import pytest

from billing_webhooks.errors import BadRequest, NotFound
from local import seeds
from tests.integration.test_deliveries import BILLING_AUTH, post
from tests.integration.test_installations import MEMBER, acme, deliver, lifecycle, payment  # noqa: F401
from tests.integration.test_quarantine import quarantined  # noqa: F401 (fixture: the quarantine emptied first)


def test_portals_list_pages_the_unvouched_and_the_unreachable_and_refuses_an_unknown_list(
    api,
    table,
    installations,
    acme,  # noqa: F811
):
    from billing_webhooks.http import reads

    assert deliver(api, "app_install", lifecycle("app_install", refresh_token=None))[0] == 200
    listed = reads.portal_list("not-vouched", limit="1")
    assert [portal["member_id"] for portal in listed["portals"]] == [MEMBER] and listed["portals"][0][
        "vouched"
    ] is False
    assert reads.portal_list("unreachable")["portals"] == []
    with pytest.raises(BadRequest):
        reads.portal_list("everything")


def test_a_portals_story_tells_its_events_and_its_entitlement_in_time_order(api, table, installations, acme):  # noqa: F811
    from billing_webhooks.http import reads

    assert deliver(api, "app_install", lifecycle("app_install"))[0] == 200
    assert deliver(api, "app_payment", payment(ts=1466500000, STATUS="P", DAYS="30"))[0] == 200
    story = reads.portal_story(MEMBER)
    told = [line["what"] for line in story["story"]]
    assert told.index("ONAPPINSTALL") < told.index("ONAPPPAYMENT") and "installed" in told
    assert [line["at"] for line in story["story"]] == sorted(line["at"] for line in story["story"])
    assert story["entitlement"]["member_id"] == MEMBER
    with pytest.raises(NotFound):
        reads.portal_story("no-such-portal")


def test_the_quarantine_is_listed_and_one_delivery_shown_with_its_errors(api, table, quarantined):  # noqa: F811
    from billing_webhooks.http import reads

    body = seeds.billing_seed_texts()["NewPayment"].replace('"amount": 2000', '"amount": "two thousand"')
    status, _, problem = post(api, "/billing/new-payment", body, BILLING_AUTH)
    assert status == 422
    kept = [
        item
        for item in reads.quarantine_list(limit="100")["quarantine"]
        if item["route"] == "POST /billing/new-payment"
    ]
    assert kept
    shown = reads.quarantine_show(kept[0]["quarantine_id"])
    assert shown["errors"][0]["field"] == "details.amount" and "two thousand" in shown["body"]
    with pytest.raises(NotFound):
        reads.quarantine_show("nothing-kept-here")
