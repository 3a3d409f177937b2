"""The load script's own counting, on a small run: it must see what it posted, and say so."""

from concurrent.futures import ThreadPoolExecutor

from local import load
from tests.integration.test_alerts import alert_queue  # noqa: F401 (fixture)
from tests.integration.test_rescue import rescue_queue  # noqa: F401 (fixture)


def test_a_small_load_run_counts_every_record_and_alert_and_reports_figures(
    stack,
    api,
    table,
    alert_queue,  # noqa: F811
    rescue_queue,
):  # noqa: F811
    result = load.run(stack, api.url, distinct=90, concurrency=8, run_name="load-test")
    assert (result.posted, result.errors, result.records, result.parked) == (99, 0, 90, 0)
    assert result.alerts == result.expected_alerts == 20 and result.ok
    report = result.report()
    assert "deliveries/s" in report and "p99" in report and report.endswith("OK")


def test_a_burst_on_fresh_connections_is_served_whole(stack, api, table):
    """Webhook senders open a connection per delivery: 128 at once must all be accepted (the
    listen backlog), answered 200 and stored."""
    deliveries = load.traffic.distinct_deliveries(256, run="burst")
    poster = load.Poster(api.url, fresh_connections=True)
    with ThreadPoolExecutor(128) as pool:
        statuses = [status for status, _ in pool.map(poster.post, deliveries)]
    assert statuses.count(200) == 256, sorted(set(statuses))
    assert len(table.items()) == 256


def test_the_local_api_accepts_a_thousand_pending_connections(api):
    assert api.httpd.request_queue_size >= 1024
