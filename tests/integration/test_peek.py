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
