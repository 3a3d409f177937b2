"""events/ and local/env.json are what local.make_events builds from the seeds."""

import base64
import json

import pytest

from local import make_events, samples, seeds, template
from local.template import ROOT

EVENTS = ROOT / "events"


@pytest.mark.parametrize("route", template.routes(), ids=lambda r: r.code_dir.name)
def test_each_function_has_an_http_api_event_for_its_route(route):
    event = json.loads((EVENTS / f"{route.code_dir.name}.json").read_text())
    assert event["version"] == "2.0"
    assert event["routeKey"] == f"POST {route.path}" == event["requestContext"]["routeKey"]
    assert event["rawPath"] == route.path


@pytest.mark.parametrize("kind", sorted(seeds.billing_seed_texts()))
def test_billing_event_bodies_are_the_seed_examples_unchanged(kind):
    route = next(r for r in template.routes() if r.function == f"{kind}Function")
    event = json.loads((EVENTS / f"{route.code_dir.name}.json").read_text())
    assert event["body"] == seeds.billing_seed_texts()[kind]
    assert event["headers"]["content-type"] == "application/json"


def test_the_bitrix24_event_is_the_seed_form_encoded_with_member_id_and_token():
    event = json.loads((EVENTS / "app_payment.json").read_text())
    assert event["isBase64Encoded"] is True
    assert event["headers"]["content-type"] == "application/x-www-form-urlencoded"
    wire = base64.b64decode(event["body"]).decode()
    assert "data%5BSTATUS%5D=S" in wire and "auth%5Bmember_id%5D=" in wire
    from billing_webhooks.wire.decoding import parse_php_form

    decoded = parse_php_form(wire)
    expected = samples.bitrix24_payment_body()
    assert decoded == json.loads(json.dumps(expected), parse_int=str)


def test_committed_files_match_what_make_events_builds():
    for name, event in make_events.sample_events().items():
        assert json.loads((EVENTS / f"{name}.json").read_text()) == event, name
    assert json.loads((ROOT / "local" / "env.json").read_text()) == make_events.sam_local_env()


def test_make_dev_prints_a_curl_line_for_every_http_event_and_the_stream_event_is_lambdas_shape():
    from local.dev import curl_line

    for path in sorted(EVENTS.glob("*.json")):
        event = json.loads(path.read_text())
        if "rawPath" in event:
            line = curl_line("http://127.0.0.1:3000", event)
            assert line.startswith("curl -sS ") and f"http://127.0.0.1:3000{event['rawPath']}" in line, path.name
        else:
            [record] = event["Records"]
            assert record["eventName"] == "INSERT" and record["dynamodb"]["NewImage"]["source"] == {"S": "billing"}
    assert json.loads((EVENTS / "accounts_api.json").read_text())["routeKey"] == "GET /accounts/{account_id}"
