"""The load script's own counting, on a small run: it must see what it posted, and say so."""

from local import load
from tests.integration.test_alerts import alert_queue  # noqa: F401 (fixture)
from tests.integration.test_rescue import rescue_queue  # noqa: F401 (fixture)


def test_a_small_load_run_counts_every_record_and_alert_and_reports_figures(stack, api, table, alert_queue,  # noqa: F811
                                                                           rescue_queue):  # noqa: F811
    result = load.run(stack, api.url, distinct=90, concurrency=8, run_name="load-test")
    assert (result.posted, result.errors, result.records, result.parked) == (99, 0, 90, 0)
    assert result.alerts == result.expected_alerts == 20 and result.ok
    report = result.report()
    assert "deliveries/s" in report and "p99" in report and report.endswith("OK")
