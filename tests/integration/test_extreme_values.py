"""Every field of every route's body, one at a time, given an extreme value (lone surrogates,
exponents, 40+ digits, calendar limits, huge strings, wrong shapes) and sent with the route's own
valid credentials: never a 5xx, nothing parked (so nothing moves ApiServerErrorsAlarm).
EXAMPLES per route, derandomized."""

import json
from typing import Any

import pytest
import requests
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from local import template
from tests.integration.test_bad_input import credentials, seed_payload
from tests.integration.test_rescue import rescue_queue  # noqa: F401 (fixture)

EXAMPLES = 40
RAW = "\x00raw\x00"  # stands for a JSON number written as its text (json.dumps cannot spell 1e125)
EXTREMES = [
    ("text", "\\ud800"),
    ("text", "a\\udfffb"),
    ("number", "1e125"),
    ("number", "9.99e125"),
    ("number", "1e-130"),
    ("number", "1" + "0" * 40),
    ("number", "1234567890123456789012345678901234567.89"),
    ("number", "1.00000000000000000000000000000000000000001"),
    ("number", "-1e38"),
    ("number", "0.0"),
    ("value", "0001-01-01 00:00:00 +05:00"),
    ("value", "9999-12-31 23:59:59 -05:00"),
    ("value", "0000-00-00"),
    ("value", "2019-02-29 10:00:00"),
    ("value", "x" * 20000),
    ("value", "٣٤"),
    ("value", ""),
    ("value", " "),
    ("value", True),
    ("value", None),
    ("value", []),
    ("value", {}),
    ("value", -1),
    ("value", 10**12),
    ("value", [{"URL": "javascript:1"}] * 50),
]


def leaf_paths(value: Any, path: tuple = ()) -> list[tuple]:
    if isinstance(value, dict):
        return [found for key, child in value.items() for found in leaf_paths(child, path + (key,))] or [path]
    if isinstance(value, list):
        return [found for index, child in enumerate(value) for found in leaf_paths(child, path + (index,))] or [path]
    return [path]


def with_value(payload: Any, path: tuple, value: Any) -> Any:
    if not path:
        return value
    head, rest = path[0], path[1:]
    if isinstance(payload, dict):
        return {**payload, head: with_value(payload[head], rest, value)}
    return [with_value(child, rest, value) if index == head else child for index, child in enumerate(payload)]


def body_with(payload: dict, path: tuple, kind: str, text: Any) -> str:
    if kind == "value":
        return json.dumps(with_value(payload, path, text))
    marker = f"{RAW}{len(path)}"
    spelled = json.dumps(with_value(payload, path, marker))
    raw = text if kind == "number" else f'"{text}"'  # a JSON escape the encoder would not write
    return spelled.replace(json.dumps(marker), raw)


@pytest.mark.parametrize("route", template.routes(), ids=lambda route: route.path)
def test_any_field_with_an_extreme_value_is_never_a_5xx_and_never_parked(
    api,
    table,
    installations,
    rescue_queue,  # noqa: F811
    route,
):
    payload = seed_payload(route)
    paths = leaf_paths(payload)
    headers = {"Content-Type": "application/json", **credentials(route)}

    @settings(
        max_examples=EXAMPLES,
        deadline=None,
        derandomize=True,
        database=None,
        suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
    )
    @given(path=st.sampled_from(paths), extreme=st.sampled_from(EXTREMES))
    def post_one(path, extreme):
        kind, value = extreme
        answer = requests.post(
            f"{api.url}{route.path}", data=body_with(payload, path, kind, value).encode(), headers=headers, timeout=30
        )
        assert answer.status_code < 500, (
            route.path,
            path,
            kind,
            str(value)[:60],
            answer.status_code,
            answer.text[:300],
        )

    post_one()
    assert rescue_queue.parcels() == []
