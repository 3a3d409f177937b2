"""A licence reads expired (or trial_ended) from the instant it ran out, though Bitrix24 says
nothing then: derived when read, from what the last event or app.info said."""

from datetime import UTC, datetime, timedelta

import pytest

from billing_webhooks.domain.licence import licence_state

AS_OF = datetime(2026, 11, 1, 12, 0, tzinfo=UTC)


def installation(status, days=None, payment_expired="N") -> dict:
    return {
        "licence_status": status,
        "days": days,
        "payment_expired": payment_expired,
        "licence_ts": int(AS_OF.timestamp()),
    }


@pytest.mark.parametrize(
    ("record", "now", "state", "since"),
    [
        (installation("P", 30), AS_OF + timedelta(days=29), "active", "2026-11-01T12:00:00.000Z"),
        (installation("P", 30), AS_OF + timedelta(days=30), "expired", "2026-12-01T12:00:00.000Z"),
        (installation("P", 30, "Y"), AS_OF, "expired", "2026-11-01T12:00:00.000Z"),
        (installation("P", -3), AS_OF, "expired", "2026-10-29T12:00:00.000Z"),
        (installation("T", 14), AS_OF + timedelta(days=15), "trial_ended", "2026-11-15T12:00:00.000Z"),
        (installation("T", 14), AS_OF + timedelta(days=1), "trial", "2026-11-01T12:00:00.000Z"),
        (installation("S", None), AS_OF + timedelta(days=400), "active", "2026-11-01T12:00:00.000Z"),
        (installation("F", 0), AS_OF, "active", "2026-11-01T12:00:00.000Z"),
        (installation("X", 30), AS_OF, "unknown status X", "2026-11-01T12:00:00.000Z"),
        ({}, AS_OF, "unknown", None),
    ],
    ids=[
        "paid",
        "paid-period-over",
        "payment-expired",
        "negative-days",
        "trial-over",
        "trial",
        "subscription",
        "free",
        "unknown-status",
        "no-licence",
    ],
)
def test_the_licence_state_changes_when_the_time_comes_not_at_the_next_event(record, now, state, since):
    derived = licence_state(record, now)
    assert (derived["state"], derived["since"]) == (state, since)


def test_a_running_licence_says_until_when():
    assert licence_state(installation("T", 14), AS_OF)["until"] == "2026-11-15T12:00:00.000Z"
