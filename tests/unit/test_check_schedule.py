"""When the licence sync checks a portal next (domain/schedule.py): only where Bitrix24's answer can
change without an event, because each check is an OAuth refresh (an access token lives an hour)."""

import math
from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

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
    checked = NOW - timedelta(days=29)  # moved by a payment; last refreshed 29 days ago
    assert at(next_check_at(licence(status, ends), NOW, last_checked=checked)) == ends + timedelta(minutes=1)


@pytest.mark.parametrize("status", ["P", "T"])
def test_the_check_after_an_end_gives_way_to_the_graces_last_when_it_would_be_a_third_refresh_in_30_days(status):
    ends = NOW + timedelta(days=14)  # a trial's end, two weeks after the install's refresh (now)
    assert at(next_check_at(licence(status, ends), NOW)) == ends + timedelta(days=3) - timedelta(hours=2)


def test_an_ended_licence_is_checked_once_more_two_hours_before_its_grace_ends():
    ended = NOW - timedelta(hours=1)
    record = licence(ends=ended, expired="Y")
    assert at(next_check_at(record, NOW)) == ended + timedelta(days=3) - timedelta(hours=2)
    # ... and after that last check, only the keep-alive.
    late = ended + timedelta(days=3) - timedelta(hours=1)
    assert at(next_check_at(record, late)) == late + timedelta(days=30)


def test_the_graces_last_check_is_made_once_though_it_learns_the_end_a_day_later():
    ended = NOW - timedelta(days=2, hours=23)  # the end it learnt, to the day
    late = licence(ends=ended + timedelta(hours=20), expired="Y")  # the grace's last check's answer
    assert at(next_check_at(late, NOW)) == NOW + timedelta(days=30)


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


def _paid(ends: datetime, as_of: datetime) -> dict:
    """The record as a check at `as_of` leaves it: the end app.info's whole DAYS tell (to the day,
    never early), expired once it passed."""
    known = as_of + timedelta(days=math.ceil((ends - as_of) / timedelta(days=1)))
    return licence("P", known, expired="Y" if as_of >= ends else "N", as_of=as_of)


@settings(max_examples=300, deadline=None)
@given(
    first_end_days=st.integers(min_value=1, max_value=90),
    payment_hours=st.lists(st.integers(min_value=0, max_value=180 * 24), max_size=6),
)
def test_no_portal_is_refreshed_more_than_twice_in_any_30_days(first_end_days, payment_hours):
    """Installed (a refresh) now, checked wherever the schedule says (each check a refresh), paid
    30 days more at the drawn hours (each moving the schedule), for 180 days."""
    ends, refreshes = NOW + timedelta(days=first_end_days), [NOW]
    payments = sorted(NOW + timedelta(hours=hours) for hours in payment_hours)
    due = at(next_check_at(_paid(ends, NOW), NOW))
    while due <= NOW + timedelta(days=180):
        if payments and payments[0] < due:
            paid_at = payments.pop(0)
            ends = max(ends, paid_at) + timedelta(days=30)
            due = at(next_check_at(_paid(ends, paid_at), paid_at, last_checked=refreshes[-1]))
            continue
        refreshes.append(due)
        due = at(next_check_at(_paid(ends, due), due))
    busiest = max(
        len([other for other in refreshes if start <= other < start + timedelta(days=30)]) for start in refreshes
    )
    assert busiest <= 2, refreshes


def test_ninety_days_of_a_monthly_subscriber_paying_a_day_early_cost_at_most_four_refreshes():
    ends, refreshes = NOW + timedelta(days=30), [NOW]  # installed (a refresh), paid for 30 days
    due = at(next_check_at(_paid(ends, NOW), NOW))
    while due <= NOW + timedelta(days=90):
        paid_at = ends - timedelta(days=1)
        if paid_at < due:  # ONAPPPAYMENT at once: the schedule follows the new end
            ends += timedelta(days=30)
            due = at(next_check_at(_paid(ends, paid_at), paid_at, last_checked=refreshes[-1]))
            continue
        refreshes.append(due)
        due = at(next_check_at(_paid(ends, due), due))
    assert len(refreshes) <= 4, refreshes
