"""When the licence sync checks a portal next (domain/schedule.py): only where Bitrix24's answer can
change without an event, because each check is an OAuth refresh (an access token lives an hour)."""

from datetime import UTC, datetime, timedelta

import pytest

from billing_webhooks.domain.licence import FROM_APP_INFO, FROM_PAYMENT_REQUIRED
from billing_webhooks.domain.schedule import next_check_at

NOW = datetime(2027, 3, 1, 12, 0, tzinfo=UTC)
REFRESH_TOKEN_LIFE = timedelta(days=180)


def licence(status: str = "P", ends: datetime | None = None, expired: str = "N", as_of: datetime = NOW) -> dict:
    record = {"licence_status": status, "payment_expired": expired, "licence_ts": int(as_of.timestamp())}
    record["licence_source"] = FROM_APP_INFO
    if ends is not None:
        record["licence_ends_at"] = int(ends.timestamp())
    return record


def at(epoch: int) -> datetime:
    return datetime.fromtimestamp(epoch, UTC)


def test_a_licence_that_never_runs_out_is_kept_alive_every_30_days_well_inside_the_refresh_tokens_life():
    due = at(next_check_at(licence("F"), NOW))
    assert due - NOW == timedelta(days=30) and due - NOW < REFRESH_TOKEN_LIFE / 2


def test_a_licence_paid_for_months_is_not_checked_before_the_keep_alive():
    assert at(next_check_at(licence(ends=NOW + timedelta(days=365)), NOW)) == NOW + timedelta(days=30)


@pytest.mark.parametrize("status", ["P", "T"])
def test_a_licence_or_trial_is_checked_a_minute_after_it_ends_not_before(status):
    ends = NOW + timedelta(days=2, hours=3)
    assert at(next_check_at(licence(status, ends), NOW)) == ends + timedelta(minutes=1)


def test_an_ended_licence_is_checked_once_more_two_hours_before_its_grace_ends():
    ended = NOW - timedelta(hours=1)
    record = licence(ends=ended, expired="Y")
    assert at(next_check_at(record, NOW)) == ended + timedelta(days=3) - timedelta(hours=2)
    # ... and after that last check, only the keep-alive.
    late = ended + timedelta(days=3) - timedelta(hours=1)
    assert at(next_check_at(record, late)) == late + timedelta(days=30)


def test_an_unpaid_licence_is_checked_once_more_before_its_grace_ends():
    record = {"licence_source": FROM_PAYMENT_REQUIRED, "licence_ts": int(NOW.timestamp()), "licence_status": "P"}
    assert at(next_check_at(record, NOW)) == NOW + timedelta(days=3) - timedelta(hours=2)


def test_a_failed_check_backs_off_from_five_minutes_up_to_six_hours():
    waits = [at(next_check_at(licence("F"), NOW, failures)) - NOW for failures in (1, 2, 3, 8, 30)]
    assert waits == [timedelta(minutes=5), timedelta(minutes=10), timedelta(minutes=20)] + [timedelta(hours=6)] * 2


def test_a_payment_moves_the_next_check_to_the_new_end_but_never_past_the_keep_alive_of_the_last_check():
    checked = NOW - timedelta(days=29)
    far = licence(ends=NOW + timedelta(days=30))
    assert at(next_check_at(far, NOW, last_checked=checked)) == checked + timedelta(days=30)
    overdue = NOW - timedelta(days=45)
    assert at(next_check_at(far, NOW, last_checked=overdue)) == NOW


def test_a_keep_alive_a_few_days_before_a_licences_end_is_put_off_to_the_ends_check():
    ends = NOW + timedelta(days=33)
    assert at(next_check_at(licence(ends=ends), NOW)) == ends + timedelta(minutes=1)
    far = NOW + timedelta(days=40)
    assert at(next_check_at(licence(ends=far), NOW)) == NOW + timedelta(days=30)
