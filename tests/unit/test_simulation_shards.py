"""`make simulate` plays a year in shards, one per core: their figures merge into the year's."""

from local.simulate import merge_shards, table

HOUR = 3600


def _shard(portals: int, wrong: dict[str, int], lags: dict[str, list[float]], **figures) -> dict:
    base = {
        "portals": portals,
        "days": 365,
        "seed": 1,
        "faults": True,
        "seconds": 100,
        "portal_hours": portals * 365 * 24,
        "wrong_hours": wrong,
        "lags": lags,
        "refreshes_per_portal_per_30_days": {"mean": 1.0, "max": 2},
        "renewals_per_portal_per_30_days": {"mean": 1.0, "max": 2},
        "refreshes_installed_once_per_30_days": {"portals": portals, "mean": 1.0, "max": 2},
        "rest_requests_per_portal_per_day": 0.1,
        "aws_requests_per_portal_per_month": 20.0,
        "aws_faults": {"dynamodb throttled": 3},
        "bitrix24_faults": {"failed": 1, "slow": 0, "lost": 0},
        "install_answers": {"200": portals},
        "billing_answers": {"200": 5},
        "requests_over_the_bucket": 0,
        "billing_accounts": 1,
        "installs_lost": 0,
        "installs_unvouched_after_a_lost_answer": 0,
        "pairs_lost_to_a_slow_answer": 0,
        "pairs_in_doubt_at_the_end": 0,
        "pairs_in_doubt_hours": [],
        "unreachable_but_installed": 0,
        "events_missing": 0,
        "events_extra": 0,
        "events_told": 10,
        "unexplained_examples": [],
        "lost_examples": [],
        "event_examples": [],
        "most_refreshed": {"2027-01-01": 1},
        "most_refreshed_life": {"domain": f"shard{portals}"},
    }
    return base | figures


def test_shards_add_their_counts_and_pool_their_lags_before_the_percentiles():
    one = _shard(1, {"late": 2}, {"late": [HOUR, HOUR]}, seconds=90, events_extra=1)
    three = _shard(
        3,
        {"late": 1, "lost": 5},
        {"late": [10 * HOUR], "lost": [5 * HOUR]},
        refreshes_per_portal_per_30_days={"mean": 2.0, "max": 3},
        renewals_per_portal_per_30_days={"mean": 1.5, "max": 2},
        refreshes_installed_once_per_30_days={"portals": 1, "mean": 2.0, "max": 2},
        most_refreshed={"2027-01-01": 2, "2027-01-02": 1},
        most_refreshed_life={"domain": "the most refreshed"},
        pairs_in_doubt_at_the_end=2,
        pairs_in_doubt_hours=[700.0, 12.5],
    )
    year = merge_shards([one, three])
    assert (year["portals"], year["shards"], year["seconds"]) == (4, 2, 100)
    assert year["wrong_hours"] == {"late": 3, "lost": 5}
    assert year["lag_hours"]["late"] == {"p50": 1.0, "p99": 10.0, "max": 10.0}
    assert year["refreshes_per_portal_per_30_days"] == {"mean": 1.75, "max": 3}  # weighed by portals
    assert year["renewals_per_portal_per_30_days"] == {"mean": 1.38, "max": 2}
    # Weighed by the portals installed once, not by all: 1 of the first shard's, 1 of the second's.
    assert year["refreshes_installed_once_per_30_days"] == {"portals": 2, "mean": 1.5, "max": 2}
    assert year["install_answers"] == {"200": 4} and year["events_extra"] == 1
    assert year["pairs_in_doubt_at_the_end"] == 2 and year["pairs_in_doubt_hours"] == [12.5, 700.0]
    assert year["most_refreshed"] == {"2027-01-01": 2, "2027-01-02": 1}
    assert year["most_refreshed_life"] == {"domain": "the most refreshed"}  # its life, from its shard
    assert "4 portals" in table(year) and "2 shard(s)" in table(year)
