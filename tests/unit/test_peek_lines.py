"""`make events` says each kind of event as what it is, not as an EntitlementChanged."""

from local.peek import event_line

BASE = {"member_id": "m1", "sequence": 4, "id": "m1:4", "as_of": "2026-12-07T00:00:00.000Z"}


def _event(kind: str, **detail) -> dict:
    return {"time": "2026-12-07T00:00:00Z", "detail-type": kind, "detail": {**BASE, **detail}}


def test_an_entitlement_change_says_the_verdict_and_the_one_before():
    line = event_line(
        _event(
            "EntitlementChanged", entitled=True, reason="paid", previous={"entitled": False, "reason": "trial_ended"}
        )
    )
    assert line.endswith("EntitlementChanged  #4  m1  entitled (paid), was not entitled (trial_ended)")


def test_a_licence_change_says_the_licence_not_an_entitlement():
    line = event_line(
        _event(
            "LicenceChanged",
            licence={"state": "expired", "status": "P"},
            previous={"state": "active", "status": "P"},
        )
    )
    assert line.endswith("LicenceChanged  #4  m1  licence expired (P), was active (P)")
    assert "entitled" not in line and "None" not in line


def test_an_account_state_change_and_an_overdue_invoice_say_their_account():
    state = event_line(_event("AccountStateChanged", account_id=504, state="Blocked", previous_state="Active"))
    assert state.endswith("account 504 Blocked, was Active")
    overdue = event_line(_event("InvoiceOverdue", account_id=504, invoice_id=38))
    assert overdue.endswith("account 504: invoice 38 overdue")
