"""No token or secret in any log line or response, on any route, accepted or refused.

Real tokens go over HTTP to every route (valid, forged, malformed, signed); every line the
functions log (at DEBUG), every metric they print and every answer is searched for them."""

import copy
import json
import logging
import time

import pytest

from billing_webhooks.http.auth import signature
from billing_webhooks.observability import logger
from local import samples, seeds
from local.template import routes
from local.wire import php_form_encode
from tests.integration.test_deliveries import FORM, post

FORGED = "forged-9f8e7d6c5b4a39281706f5e4d3c2b1a0"
SECRETS = {
    samples.BILLING_TOKEN,
    samples.BILLING_SIGNING_KEY,
    samples.PORTAL_APPLICATION_TOKEN,
    samples.PORTAL_ACCESS_TOKEN,
    FORGED,
}


class Lines(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.setFormatter(logger.registered_formatter)
        self.lines: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.lines.append(self.format(record))


@pytest.fixture
def captured(monkeypatch):
    """Every log line of the functions' logger and of any other logger, at DEBUG."""
    lines = Lines()
    loggers = [logger._logger, logging.getLogger()]
    levels = [each.level for each in loggers]
    for each in loggers:
        each.addHandler(lines)
        each.setLevel(logging.DEBUG)
    yield lines.lines
    for each, level in zip(loggers, levels, strict=False):
        each.removeHandler(lines)
        each.setLevel(level)


def billing_deliveries(kind: str) -> list[tuple[str, str, dict[str, str]]]:
    body = seeds.billing_seed_texts()[kind]
    json_headers = {"Content-Type": "application/json"}
    now = str(int(time.time()))
    return [
        ("", body, {**json_headers, "Authorization": f"Bearer {samples.BILLING_TOKEN}"}),
        (f"?token={samples.BILLING_TOKEN}", body, json_headers),
        ("", body, json_headers),
        ("", body, {**json_headers, "X-Webhook-Token": FORGED}),
        (f"?token={FORGED}", body, json_headers),
        ("", body.replace('"id"', '"idx"', 1), {**json_headers, "Authorization": f"Bearer {samples.BILLING_TOKEN}"}),
        ("", json.dumps({"token": samples.BILLING_TOKEN}), {**json_headers, "Authorization": f"Bearer {FORGED}"}),
        (
            "",
            body,
            {
                **json_headers,
                "Authorization": f"Bearer {samples.BILLING_TOKEN}",
                "X-Webhook-Timestamp": now,
                "X-Webhook-Signature": signature(samples.BILLING_SIGNING_KEY, now, body.encode()),
            },
        ),
        (
            "",
            body + " ",
            {
                **json_headers,
                "Authorization": f"Bearer {samples.BILLING_TOKEN}",
                "X-Webhook-Timestamp": now,
                "X-Webhook-Signature": f"sha256={FORGED}",
            },
        ),
    ]


def bitrix24_deliveries(name: str) -> list[tuple[str, str, dict[str, str]]]:
    body = samples.BITRIX24_BODIES[name]()
    forged = copy.deepcopy(body)
    forged["auth"]["application_token"] = FORGED
    invalid = copy.deepcopy(body)
    invalid["data"] = {"VERSION": {"not": "a version"}}
    json_headers = {"Content-Type": "application/json"}
    return [
        ("", php_form_encode(body), FORM),
        ("", php_form_encode(body), FORM),  # the duplicate
        ("", php_form_encode(forged), FORM),
        ("", php_form_encode(invalid), FORM),
        ("", json.dumps(invalid), json_headers),
        ("", php_form_encode(body)[:-7], FORM),
    ]


@pytest.mark.parametrize("signatures", ["off", "required"])
def test_no_token_or_secret_reaches_a_log_line_a_metric_or_an_answer(
    api, table, installations, captured, capsys, monkeypatch, signatures
):
    monkeypatch.setenv("BILLING_SIGNATURE", signatures)
    answers = []
    for route in routes():
        name = route.code_dir.name
        deliveries = (
            bitrix24_deliveries(name)
            if route.path.startswith("/bitrix24/")
            else billing_deliveries(route.function.removesuffix("Function"))
        )
        for query, body, headers in deliveries:
            status, response_headers, answer = post(api, route.path + query, body, headers)
            answers.append(json.dumps([status, response_headers, answer]))
    statuses = {json.loads(answer)[0] for answer in answers}
    assert {200, 401, 403, 422} <= statuses  # accepted and refused deliveries alike
    printed = capsys.readouterr()
    assert captured, "the functions logged nothing: the capture is broken"
    for text in [*captured, printed.out, printed.err, *answers]:
        leaked = [secret for secret in SECRETS if secret in text]
        assert not leaked, f"{leaked} in {text[:300]}"
