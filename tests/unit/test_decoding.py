import base64
import json
from decimal import Decimal

import pytest

from billing_webhooks.errors import MalformedBody, PayloadTooLarge, UnsupportedMediaType
from billing_webhooks.wire import decoding
from local.wire import php_form_encode

BOTH = frozenset({decoding.JSON, decoding.FORM})


def _event(body: str | bytes, content_type: str | None = "application/json", b64: bool = False) -> dict:
    raw = body.encode() if isinstance(body, str) else body
    headers = {"content-type": content_type} if content_type else {}
    if b64:
        return {"headers": headers, "body": base64.b64encode(raw).decode(), "isBase64Encoded": True}
    return {"headers": headers, "body": raw.decode("utf-8", "replace"), "isBase64Encoded": False}


def test_php_bracket_keys_rebuild_nested_data_exactly_as_the_wire_sends_it():
    wire = (
        "event=ONAPPPAYMENT&event_handler_id=14&data%5BCODE%5D=bitrix.gds_company&data%5BDAYS%5D=28"
        "&ts=1466439714&auth%5Bdomain%5D=some-domain.bitrix24.com"
        "&auth%5Bclient_endpoint%5D=https%3A%2F%2Fsome-domain.bitrix24.com%2Frest%2F"
    )
    assert decoding.parse_php_form(wire) == {
        "event": "ONAPPPAYMENT",
        "event_handler_id": "14",
        "data": {"CODE": "bitrix.gds_company", "DAYS": "28"},
        "ts": "1466439714",
        "auth": {"domain": "some-domain.bitrix24.com", "client_endpoint": "https://some-domain.bitrix24.com/rest/"},
    }


def test_php_lists_from_empty_and_numeric_brackets():
    assert decoding.parse_php_form("a[]=1&a[]=2&b[0]=x&b[1]=y&c[5]=z&d=") == {
        "a": ["1", "2"],
        "b": ["x", "y"],
        "c": {"5": "z"},
        "d": "",
    }


def test_form_encoding_round_trips_nested_values():
    data = {"event": "ONAPPPAYMENT", "data": {"CODE": "x", "LIST": ["1", "2"]}, "auth": {"member_id": "m"}}
    assert decoding.parse_php_form(php_form_encode(data)) == data


def test_base64_bodies_are_decoded_as_api_gateway_sends_forms():
    event = _event(php_form_encode({"event": "ONAPPPAYMENT", "auth": {"domain": "d"}}), decoding.FORM, b64=True)
    assert decoding.decode(event, BOTH) == {"event": "ONAPPPAYMENT", "auth": {"domain": "d"}}


def test_json_fractions_are_decimals():
    assert decoding.decode(_event('{"amount": 1861.52}'), BOTH) == {"amount": Decimal("1861.52")}


def test_content_type_parameters_and_case_are_ignored():
    assert decoding.decode(_event('{"a": 1}', "Application/JSON; charset=utf-8"), BOTH) == {"a": 1}


def test_a_missing_content_type_is_read_as_json():
    assert decoding.decode(_event('{"a": 1}', None), BOTH) == {"a": 1}


@pytest.mark.parametrize("content_type", ["text/plain", "application/xml", "multipart/form-data; boundary=x"])
def test_other_content_types_are_415(content_type):
    with pytest.raises(UnsupportedMediaType):
        decoding.decode(_event('{"a": 1}', content_type), BOTH)


def test_billing_routes_refuse_forms_with_415():
    with pytest.raises(UnsupportedMediaType):
        decoding.decode(_event("a=1", decoding.FORM), frozenset({decoding.JSON}))


@pytest.mark.parametrize("body", ['{"a": ', "[1, 2]", '"text"', "{}", '{"a": NaN}', "\ufeff{"])
def test_malformed_or_non_object_bodies_are_400(body):
    with pytest.raises(MalformedBody):
        decoding.decode(_event(body), BOTH)


def test_invalid_utf8_is_400():
    with pytest.raises(MalformedBody):
        decoding.decode(_event(b'{"a": "\xff"}', b64=True), BOTH)


def test_invalid_base64_is_400():
    with pytest.raises(MalformedBody):
        decoding.decode({"headers": {}, "body": "***", "isBase64Encoded": True}, BOTH)


def test_bodies_over_64_kib_are_413_and_64_kib_exactly_is_read():
    filler = "x" * (64 * 1024 - len('{"a": ""}'))
    assert decoding.decode(_event(json.dumps({"a": filler})), BOTH)["a"] == filler
    with pytest.raises(PayloadTooLarge):
        decoding.decode(_event(json.dumps({"a": filler + "y"})), BOTH)
    with pytest.raises(PayloadTooLarge):
        decoding.decode(_event(json.dumps({"a": filler + "y"}), b64=True), BOTH)


def _lines_run(function, *args) -> int:
    """Lines the decoder executes: its work, counted rather than timed (a noisy machine cannot flake it)."""
    import sys

    count = 0

    def trace(frame, event, arg):
        nonlocal count
        if event == "line":
            count += 1
        return trace

    sys.settrace(trace)
    try:
        function(*args)
    finally:
        sys.settrace(None)
    return count


@pytest.mark.parametrize("shape", ["d[]={}", "d[{}]=x", "k{}=v", "a[b][{}]=x"])
def test_decoding_a_form_is_linear_in_its_size_whatever_its_shape(shape):
    def body(pairs: int) -> str:
        return "&".join(shape.format(number) for number in range(pairs))

    small, large = _lines_run(decoding.parse_php_form, body(200)), _lines_run(decoding.parse_php_form, body(800))
    assert large < 4.5 * small  # 4x the pairs, 4x the work (quadratic would be 16x)


def test_a_flood_of_appends_keeps_php_order_and_indexes():
    assert decoding.parse_php_form("d[]=a&d[5]=b&d[]=c") == {"d": {"0": "a", "5": "b", "6": "c"}}
    assert decoding.parse_php_form("&".join(["d[]=x"] * 999))["d"] == ["x"] * 999


def test_a_form_is_bounded_in_fields_and_nodes_not_only_in_depth_and_size():
    from billing_webhooks.errors import MalformedBody

    with pytest.raises(MalformedBody, match="fields"):
        decoding.parse_php_form("&".join(["d[]=x"] * decoding.MAX_FORM_PAIRS + ["e=1"]))
    deep = "&".join(f"k{n}" + "[a]" * 29 + "=x" for n in range(decoding.MAX_FORM_NODES // 30 + 1))
    with pytest.raises(MalformedBody, match="nodes"):
        decoding.parse_php_form(deep)
    assert decoding.parse_php_form("&".join(f"k{n}" + "[a]" * 29 + "=x" for n in range(decoding.MAX_FORM_NODES // 30)))


def test_indexes_with_leading_zeros_are_keys_not_positions():
    assert decoding.parse_php_form("data[0]=a&data[01]=b") == {"data": {"0": "a", "01": "b"}}
    # "01" takes no position: the next append goes to 1 (PHP's parse_str), not to 2.
    assert decoding.parse_php_form("data[]=a&data[01]=b&data[]=c") == {"data": {"0": "a", "01": "b", "1": "c"}}
    assert decoding.parse_php_form("data[0]=a&data[1]=b") == {"data": ["a", "b"]}


@pytest.mark.parametrize(
    "body,kind",
    [
        ("data" + "[a]" * 1000 + "=x", decoding.FORM),
        ("data" + "[a]" * 31 + "=x", decoding.FORM),
        ('{"a":' * 31 + "1" + "}" * 31, decoding.JSON),
        ("[" * 20000 + "]" * 20000, decoding.JSON),
    ],
    ids=["form-1000-levels", "form-31-levels", "json-31-levels", "json-20000-levels"],
)
def test_bodies_nesting_deeper_than_dynamodb_can_store_are_refused_as_malformed(body, kind):
    with pytest.raises(MalformedBody):
        decoding.decode(_event(body, kind), BOTH)


def test_thirty_levels_of_nesting_are_kept():
    assert decoding.decode(_event("data" + "[a]" * 29 + "=x", decoding.FORM), BOTH)["data"]["a"]["a"]
    assert decoding.decode(_event('{"a":' * 30 + "1" + "}" * 30), BOTH)["a"]["a"]
