"""docs/entitlements.md's decision table, one test per row, in the table's order: the first row
that matches decides whether the portal may use the app, and says why."""

from datetime import UTC, datetime, timedelta

import pytest

from billing_webhooks.domain.entitlements import decide

AS_OF = datetime(2026, 11, 1, 12, 0, tzinfo=UTC)
GRACE = timedelta(days=3)


def installation(status="P", days=30, payment_expired="N", **changes) -> dict:
    return {
        "member_id": "m1",
        "status": "installed",
        "vouched": True,
        "licence_status": status,
        "days": days,
        "payment_expired": payment_expired,
        "licence_ts": int(AS_OF.timestamp()),
        "licence_source": "app.info",
        **changes,
    }


def account(state="Active", *invoices: tuple[int, str]) -> dict:
    return {
        "account_id": 504,
        "state": {"state": state} if state else None,
        "trial": None,
        "open_invoices": [{"invoice_id": invoice_id, "unpaid": {"blocking_on": day}} for invoice_id, day in invoices],
    }


def ask(record, linked=None, now=AS_OF + timedelta(days=1)) -> dict:
    return decide("m1", record, linked, now, GRACE)


def test_row_1_a_portal_without_the_app_installed_may_not():
    assert (ask(None)["entitled"], ask(None)["reason"]) == (False, "not_installed")
    gone = ask({**installation(), "status": "uninstalled"})
    assert (gone["entitled"], gone["reason"]) == (False, "not_installed")


def test_row_2_an_install_bitrix24_never_vouched_for_may_not():
    answer = ask(installation(vouched=False))
    assert answer["entitled"] is False and answer["reason"].startswith("not_vouched")


def test_row_2b_a_portal_whose_tokens_bitrix24_refuses_may_not_but_one_with_tokens_in_doubt_keeps_its_licence():
    revoked = ask({**installation("P", 30), "unreachable_because": "invalid_grant"})
    assert revoked["entitled"] is False and revoked["reason"].startswith("portal_unreachable")
    in_doubt = ask({**installation("P", 30), "unreachable_because": "tokens_in_doubt"})
    assert (in_doubt["entitled"], in_doubt["reason"]) == (True, "paid")


@pytest.mark.parametrize(
    ("record", "reason"),
    [
        (installation("P", 30, "Y"), "licence_expired"),
        (installation("T", 0), "trial_ended"),
        (installation("P", 30, licence_source="PAYMENT_REQUIRED"), "licence_unpaid"),
    ],
    ids=["expired", "trial-ended", "unpaid"],
)
def test_row_3_a_licence_ended_or_unpaid_beyond_the_grace_period_may_not(record, reason):
    within = ask(record, now=AS_OF + GRACE - timedelta(seconds=1))
    assert (within["entitled"], within["reason"]) == (True, f"{reason}_in_grace")
    assert within["grace_until"] == within["until"] == within["changes_at"]
    beyond = ask(record, now=AS_OF + GRACE + timedelta(days=1))
    assert (beyond["entitled"], beyond["reason"]) == (False, reason)


@pytest.mark.parametrize(
    ("record", "reason"),
    [
        (installation("X"), "licence_unknown_status_X"),
        (installation(licence_status=None, licence_ts=None), "licence_unknown"),
    ],
    ids=["unknown-status", "no-licence"],
)
def test_row_4_an_unknown_licence_status_never_grants_and_is_named(record, reason):
    answer = ask(record)
    assert (answer["entitled"], answer["reason"]) == (False, reason)


@pytest.mark.parametrize("state", ["Blocked", "Suspended", "Deactive"])
def test_row_5_a_blocked_or_suspended_billing_account_may_not(state):
    answer = ask(installation(), account(state))
    assert (answer["entitled"], answer["reason"]) == (False, f"account_{state.lower()}")
    assert answer["account"]["state"] == state


def test_row_6_an_unknown_account_state_never_grants_and_is_named():
    answer = ask(installation(), account("Frozen"))
    assert (answer["entitled"], answer["reason"]) == (False, "account_state_unknown: Frozen")


def test_row_7_an_unpaid_invoice_past_its_blocking_day_may_not_and_is_named():
    linked = account("Active", (7001, "2026-11-02"), (7002, "2026-11-20"))
    before = ask(installation(), linked, now=datetime(2026, 11, 1, 23, 59, tzinfo=UTC))
    assert before["entitled"] is True and before["changes_at"] == "2026-11-02T00:00:00.000Z"
    after = ask(installation(), linked, now=datetime(2026, 11, 2, tzinfo=UTC))
    assert (after["entitled"], after["reason"]) == (False, "invoice_overdue: 7001")
    assert after["account"]["overdue_invoices"] == [7001] and after["changes_at"] == "2026-11-20T00:00:00.000Z"


def test_row_8_a_running_trial_may_until_its_end():
    answer = ask(installation("T", 14), account("Test"))
    assert (answer["entitled"], answer["reason"], answer["until"]) == (True, "trial", "2026-11-15T12:00:00.000Z")


def test_row_9_a_paid_licence_may_until_its_paid_date_and_a_free_one_for_good():
    paid = ask(installation("P", 30), account("Active"))
    assert (paid["entitled"], paid["reason"], paid["until"]) == (True, "paid", "2026-12-01T12:00:00.000Z")
    free = ask(installation("F", None))
    assert (free["entitled"], free["reason"], free["until"], free["account"]) == (True, "paid", None, None)


def test_an_account_denial_wins_over_a_licence_still_in_its_grace_period():
    answer = ask(installation("P", 30, "Y"), account("Blocked"), now=AS_OF + timedelta(hours=1))
    assert (answer["entitled"], answer["reason"]) == (False, "account_blocked")


def test_every_event_of_one_change_has_an_id_of_its_own_and_carries_the_changes_sequence():
    from billing_webhooks.domain.entitlement_events import MAX_OVERDUE_EVENTS, changed_events

    before = {
        "entitled": True,
        "reason": "paid",
        "until": None,
        "grace_until": None,
        "licence": {"state": "active", "status": "P"},
        "account": {"account_id": 504, "state": "Active", "overdue_invoices": []},
    }
    after = {
        "member_id": "m1",
        "as_of": "2026-12-07T00:00:00Z",
        "entitled": False,
        "reason": "invoice_overdue: 1, 2",
        "until": None,
        "grace_until": None,
        "licence": {"state": "expired", "status": "P"},
        "account": {"account_id": 504, "state": "Blocked", "overdue_invoices": list(range(1, 13))},
    }
    told = changed_events(after, 7, before)
    kinds = [event["detail_type"] for event in told]
    assert kinds[:3] == ["EntitlementChanged", "LicenceChanged", "AccountStateChanged"]
    assert kinds[3:] == ["InvoiceOverdue"] * MAX_OVERDUE_EVENTS
    assert len({event["id"] for event in told}) == len(told)
    assert {event["sequence"] for event in told} == {7}
