"""A part's key is bounded whatever the name, and sorts names as the view lists them."""

from decimal import Decimal

from hypothesis import given
from hypothesis import strategies as st

from billing_webhooks.data.accounts import FIRST_SINGLE_PART
from billing_webhooks.domain import accounts

# DynamoDB's limit on a sort key, in UTF-8 bytes.
SORT_KEY_BYTES = 1024
whole_numbers = st.integers(min_value=-(10**125), max_value=10**125)
names = st.text(max_size=3000)


@given(whole_numbers, whole_numbers)
def test_whole_numbers_sort_by_value(first, second):
    assert (accounts.part_key("invoice", first) < accounts.part_key("invoice", second)) == (first < second)
    assert len(accounts.part_key("invoice", first).encode()) <= SORT_KEY_BYTES


@given(names)
def test_any_name_makes_a_key_under_dynamodbs_limit_and_no_two_names_share_one(name):
    key = accounts.part_key("balance", name)
    assert len(key.encode("utf-8", "surrogatepass")) <= SORT_KEY_BYTES
    assert key != accounts.part_key("balance", name + "x")


def test_long_names_that_share_their_first_bytes_keep_their_own_keys():
    first, second = "a" * 1100, "a" * 1099 + "b"
    assert accounts.part_key("balance", first) != accounts.part_key("balance", second)
    assert len(accounts.part_key("balance", first).encode()) < 300


def test_names_that_look_like_numbers_are_names_and_numbers_off_a_stream_are_numbers():
    assert accounts.part_key("balance", "²") == "balance#s²"
    assert accounts.part_key("balance", "--1") == "balance#s--1"
    assert accounts.part_key("invoice", Decimal("38")) == accounts.part_key("invoice", 38)
    assert accounts.part_key("invoice", "38") != accounts.part_key("invoice", 38)


def test_every_list_sorts_below_the_singles_which_one_query_reads():
    for kind in accounts.LISTS.values():
        assert accounts.part_key(kind, "\U0010ffff" * 300) < FIRST_SINGLE_PART
    assert sorted([accounts.PROFILE, accounts.STATE, accounts.TRIAL])[0] == FIRST_SINGLE_PART


def _record(notification_id: str, kind: str, when: str = "2019-03-05T15:10:22.000Z", digest: str = "0" * 64) -> dict:
    return {"event_time": when, "notification_id": notification_id, "notification_type": kind, "payload_sha256": digest}


def test_the_stamp_orders_by_instant_then_id_type_and_digest_never_a_tie():
    shared_id = [_record("AxmLozMymJAO", "InvoiceForNewPeriod"), _record("AxmLozMymJAO", "ProductStateChange")]
    assert accounts.stamp(shared_id[0]) != accounts.stamp(shared_id[1])
    assert accounts.stamp(_record("Z", "A", "2019-03-05T15:10:21.000Z")) < accounts.stamp(_record("A", "A"))
    assert accounts.stamp(_record("A", "B", digest="1" * 64)) > accounts.stamp(_record("A", "B"))
