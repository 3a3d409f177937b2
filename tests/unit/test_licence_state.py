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


def test_a_licence_reported_ended_days_ago_ended_then_not_when_we_heard_of_it():
    from billing_webhooks.domain.licence import licence_figures

    kept = {"licence_ts": int(AS_OF.timestamp()), **licence_figures("P", "Y", -3, AS_OF)}
    assert licence_state(kept, AS_OF)["since"] == "2026-10-29T12:00:00.000Z"


def test_daily_answers_that_only_confirm_an_end_keep_the_instant_first_known():
    from billing_webhooks.domain.licence import confirms, licence_figures

    ended = AS_OF - timedelta(days=2, hours=7)
    kept = {"licence_ts": int(AS_OF.timestamp()), **licence_figures("P", "Y", -2, AS_OF)}
    for day in range(1, 40):  # a check a day, at another hour each day; DAYS counts whole days back
        asked = AS_OF + timedelta(days=day, hours=day % 24)
        whole_days = -int((asked - ended).total_seconds() // 86400)
        assert confirms(kept, licence_figures("P", "Y", whole_days, asked)), day
    renewed = licence_figures("P", "N", 30, AS_OF + timedelta(days=3))
    assert not confirms(kept, renewed)
    assert not confirms(kept, licence_figures("P", "Y", -40, AS_OF))  # an end a month earlier is news
