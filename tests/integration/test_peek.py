"""`make records` and `make alerts` read what the make dev stack holds."""

from local import peek
from tests.integration.test_alerts import alert_queue  # noqa: F401 (fixture)
from tests.integration.test_deliveries import BILLING_AUTH, post


def test_records_and_alerts_show_a_posted_unpaid_invoice(api, stack, table, alert_queue):  # noqa: F811
    from local import seeds

    status, _, _ = post(api, "/billing/unpaid-invoice", seeds.billing_seed_texts()["UnPaidInvoice"], BILLING_AUTH)
    assert status == 200
    [record] = peek.records(stack.endpoints["AWS_ENDPOINT_URL_DYNAMODB"])
    assert (record["notification_id"], record["alert_status"]) == ("RxmLozMomJAO", "published")
    found = peek.alerts(stack.endpoints["AWS_ENDPOINT_URL_SQS"])
    assert [alert["notification_key"] for alert in found] == ["UnPaidInvoice#RxmLozMomJAO"]
    assert peek.alerts(stack.endpoints["AWS_ENDPOINT_URL_SQS"]) == found  # left on the queue for others


def test_make_records_read_by_a_reader_that_stops_ends_quietly(api, stack, table):
    """`make records | head -1`: the reader had enough. Before, it said the stack was not running."""
    import os
    import sys
    from urllib.parse import urlsplit

    from local import seeds
    from tests.conftest import run_into_a_closed_pipe

    assert post(api, "/billing/unpaid-invoice", seeds.billing_seed_texts()["UnPaidInvoice"], BILLING_AUTH)[0] == 200
    ports = {
        "DYNAMODB_LOCAL_PORT": str(urlsplit(stack.endpoints["AWS_ENDPOINT_URL_DYNAMODB"]).port),
        "MOTO_PORT": str(urlsplit(stack.endpoints["AWS_ENDPOINT_URL_SQS"]).port),
    }
    done = run_into_a_closed_pipe([sys.executable, "-m", "local.peek", "records"], {**os.environ, **ports})
    assert done.returncode == 0 and done.stderr == "", done.stderr
