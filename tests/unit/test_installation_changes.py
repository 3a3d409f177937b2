"""InstallationsTable's stream decides an entitlement again only for a write that moved what the
decision reads: a licence check's bookkeeping (its claim, its outcome, its next time) costs nothing."""

from billing_webhooks.jobs.installation_changes import moves_entitlement


def _record(old: dict, new: dict) -> dict:
    image = lambda values: {name: {"S": str(value)} for name, value in values.items()}  # noqa: E731
    return {"dynamodb": {"Keys": {"member_id": {"S": "m1"}}, "OldImage": image(old), "NewImage": image(new)}}


INSTALLED = {
    "member_id": "m1",
    "status": "installed",
    "vouched": True,
    "licence_status": "P",
    "licence_ts": 100,
    "days": 30,
}


def test_a_checks_claim_and_bookkeeping_move_nothing_the_decision_reads():
    checked = {**INSTALLED, "next_check_at": 999, "last_checked_at": "2026-12-07T00:00:00Z", "check_failures": 0}
    assert not moves_entitlement(_record(INSTALLED, checked))


def test_a_licence_a_status_or_a_vouching_that_moved_decides_again():
    for change in (
        {"licence_ts": 200},
        {"days": 0},
        {"payment_expired": "Y"},
        {"status": "uninstalled"},
        {"vouched": False},
    ):
        assert moves_entitlement(_record(INSTALLED, {**INSTALLED, **change})), change


def test_a_first_write_decides():
    assert moves_entitlement(
        {"dynamodb": {"Keys": {"member_id": {"S": "m1"}}, "NewImage": {"status": {"S": "installed"}}}}
    )
