"""What operators see: one EMF metric document per delivery naming its outcome, and JSON log lines
whose correlation id is the notification key; also when the local server runs deliveries side by side."""

import json
from concurrent.futures import ThreadPoolExecutor

import pytest
from botocore.stub import Stubber

from billing_webhooks.data import toolkit
from local import traffic
from local.replay import replay
from tests.conftest import invoke, load_event
from tests.integration.test_deliveries import post
from tests.integration.test_no_secret_in_logs import captured  # noqa: F401 (fixture)
from tests.integration.test_rescue import rescue_queue  # noqa: F401 (fixture)


def emf_documents(printed: str) -> list[dict]:
    """Every EMF document printed: {metric name: [values]} plus its dimensions."""
    documents = []
    for line in printed.splitlines():
        if '"_aws"' not in line:
            continue
        blob = json.loads(line)
        [directive] = blob["_aws"]["CloudWatchMetrics"]
        names = [metric["Name"] for metric in directive["Metrics"]]
        dimensions = {name: blob[name] for group in directive["Dimensions"] for name in group}
        values = {name: blob[name] if isinstance(blob[name], list) else [blob[name]] for name in names}
        documents.append({"metrics": values, "dimensions": dimensions})
    return documents


def test_each_outcome_is_its_own_metric_and_refusals_carry_their_reason(functions, table, capsys, rescue_queue):  # noqa: F811
    capsys.readouterr()
    event = load_event("unpaid_invoice")
    invoke(functions["unpaid_invoice"], event)  # stored, alert published
    invoke(functions["unpaid_invoice"], event)  # duplicate
    conflicting = {**event, "body": event["body"].replace('"days_not_paid": 5', '"days_not_paid": 6')}
    assert invoke(functions["unpaid_invoice"], conflicting)[0] == 409
    anonymous = {**event, "headers": {"content-type": "application/json"}}
    assert invoke(functions["unpaid_invoice"], anonymous)[0] == 401
    with Stubber(toolkit.dynamodb()) as stubber:
        stubber.add_client_error("put_item", service_error_code="ThrottlingException", http_status_code=400)
        assert invoke(functions["new_payment"], load_event("new_payment"))[0] == 503
    assert replay()["replayed"] == 1

    documents = emf_documents(capsys.readouterr().out)
    assert [doc["metrics"] for doc in documents] == [
        {"Stored": [1.0], "AlertsPublished": [1.0]},
        {"Duplicate": [1.0]},
        {"Rejected": [1.0], "Conflict": [1.0]},
        {"Rejected": [1.0]},
        {"Rejected": [1.0], "Parked": [1.0]},
        {"Stored": [1.0], "Replayed": [1.0]},
    ]
    reasons = [doc["dimensions"].get("reason") for doc in documents]
    assert reasons == [None, None, "conflict", "unauthenticated", "unavailable", None]
    assert all(doc["dimensions"]["service"] == "bitrix24-billing-webhooks" for doc in documents)


def test_log_lines_of_a_delivery_carry_its_notification_key_as_correlation_id(functions, table, captured):  # noqa: F811
    invoke(functions["unpaid_invoice"], load_event("unpaid_invoice"))
    published = [json.loads(line) for line in captured if "alert published" in line]
    assert published and all(line["correlation_id"] == "UnPaidInvoice#RxmLozMomJAO" for line in published)


def test_deliveries_served_side_by_side_never_mix_their_metrics(api, table, capsys):
    """The local server runs deliveries of different functions on threads of one process, where
    Powertools keeps a single metric set: each delivery must still flush exactly its own."""
    deliveries = traffic.distinct_deliveries(90, run="metrics")
    refused = [
        (delivery.path, delivery.body, {"Content-Type": "application/json"})
        for delivery in deliveries[:30]
        if delivery.path.startswith("/billing/")
    ]
    posts = [(d.path, d.body, d.headers) for d in deliveries] + refused
    capsys.readouterr()
    with ThreadPoolExecutor(16) as pool:
        statuses = list(pool.map(lambda args: post(api, *args)[0], posts))
    documents = emf_documents(capsys.readouterr().out)

    assert statuses.count(401) == len(refused) and statuses.count(200) == len(deliveries)
    assert len(documents) == len(posts)  # one document per delivery, none merged
    for doc in documents:
        outcome = {"Stored", "Duplicate", "Rejected"} & doc["metrics"].keys()
        assert len(outcome) == 1 and all(value == [1.0] for value in doc["metrics"].values()), doc
        assert ("reason" in doc["dimensions"]) == (outcome == {"Rejected"}), doc
    assert sum("Stored" in doc["metrics"] for doc in documents) == len(deliveries)
    alerting = sum(delivery.alerts for delivery in deliveries)
    assert sum("AlertsPublished" in doc["metrics"] for doc in documents) == alerting


@pytest.fixture(autouse=True)
def _metrics_on(monkeypatch):
    monkeypatch.delenv("POWERTOOLS_METRICS_DISABLED", raising=False)
