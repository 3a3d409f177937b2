"""Step 1 of the pipeline: the raw HTTP API request body to a dict, or a clear refusal."""

import base64
import binascii
import json
import re
from decimal import Decimal
from typing import Any
from urllib.parse import parse_qsl

from billing_webhooks.errors import MalformedBody, PayloadTooLarge, UnsupportedMediaType

MAX_BODY_BYTES = 64 * 1024
JSON = "application/json"
FORM = "application/x-www-form-urlencoded"
BITRIX24 = frozenset({FORM, JSON})  # form on the wire; JSON as the docs show it


def lowered_headers(event: dict[str, Any]) -> dict[str, str]:
    """The event's headers by lower-case name (API Gateway sends them so; a hand-made event may not)."""
    return {name.lower(): value for name, value in (event.get("headers") or {}).items()}


def media_type(headers: dict[str, str] | None) -> str | None:
    for name, value in (headers or {}).items():
        if name.lower() == "content-type":
            return value.split(";", 1)[0].strip().lower() or None
    return None


def raw_body(event: dict[str, Any]) -> bytes:
    body = event.get("body") or ""
    if len(body) > MAX_BODY_BYTES * 4 // 3 + 4:  # refuse before decoding anything huge
        raise PayloadTooLarge(f"The body exceeds {MAX_BODY_BYTES} bytes.")
    if event.get("isBase64Encoded"):
        try:
            data = base64.b64decode(body, validate=True)
        except (binascii.Error, ValueError):
            raise MalformedBody("The body is marked base64-encoded but is not valid base64.") from None
    else:
        data = body.encode("utf-8")
    if len(data) > MAX_BODY_BYTES:
        raise PayloadTooLarge(f"The body exceeds {MAX_BODY_BYTES} bytes.")
    return data


def _reject_constant(name: str) -> None:
    raise ValueError(f"{name} is not a number")


def parse_json(data: bytes) -> Any:
    # Decimal for every fraction: money must never pass through float.
    return json.loads(data, parse_float=Decimal, parse_constant=_reject_constant)


# DynamoDB keeps at most 32 levels of nesting, and the record holds the payload one level down:
# a deeper body could never be stored, so it is refused here, before any work on it.
MAX_DEPTH = 30


# What a form may build: a Bitrix24 event has a few dozen fields a few levels deep. Bounded, so
# that any 64 KiB body decodes in a few milliseconds whatever its shape (`make bench-decoder`).
MAX_FORM_PAIRS = 1000
MAX_FORM_NODES = 4000


def _is_index(key: str) -> bool:
    """A list index as PHP writes one: ASCII digits, no leading zero ("01" is a key, not 1)."""
    return 0 < len(key) <= 9 and key.isascii() and key.isdigit() and (key == "0" or not key.startswith("0"))


def form_key_path(key: str) -> list[str]:
    """A form key's path as parse_php_form reads it: `auth[domain]` -> ["auth", "domain"]. From
    the first unbalanced bracket on, the rest is dropped (`auth[application_token][x` is the
    token's key): whatever reads keys apart from the decoder (parcels.py cuts the tokens out of a
    kept body) reads them with this, so both agree on what a key names."""
    head, bracket, rest = key.partition("[")
    path = [head]
    if bracket:
        for part in rest.split("["):
            if not part.endswith("]"):
                break  # unbalanced: PHP keeps the rest as literal text; we drop it
            path.append(part[:-1])
    return path


def parse_php_form(text: str) -> dict[str, Any]:
    """Rebuild nested keys as PHP's parse_str does: `auth[domain]=x` -> {"auth": {"domain": "x"}}.

    Linear in the body: `x[]` appends at the node's next index, kept as it grows (PHP's rule: one
    past the largest integer key), never counted again."""
    if text.count("&") >= MAX_FORM_PAIRS:  # counted before any parsing: the cheapest refusal
        raise MalformedBody(f"The form has more than {MAX_FORM_PAIRS} fields.")
    root: dict[str, Any] = {}
    next_index: dict[int, int] = {}  # id(node) -> where the next `[]` goes
    nodes = 0
    for key, value in parse_qsl(text, keep_blank_values=True, errors="strict"):
        if "[" not in key:
            if key:
                root[key] = value
            continue
        path = form_key_path(key)
        if not path[0]:
            continue  # PHP drops keys that start with a bracket
        if len(path) > MAX_DEPTH:
            raise MalformedBody(f"Form keys nest deeper than {MAX_DEPTH} levels.")
        nodes += len(path)
        if nodes > MAX_FORM_NODES:
            raise MalformedBody(f"The form's keys make more than {MAX_FORM_NODES} nodes.")
        node: dict[str, Any] = root
        last = len(path) - 1
        for position, name in enumerate(path):
            if name == "":  # `x[]` appends
                name = str(next_index.get(id(node), 0))
            if _is_index(name):
                next_index[id(node)] = max(next_index.get(id(node), 0), int(name) + 1)
            if position == last:
                node[name] = value
            else:
                nested = node.get(name)
                if not isinstance(nested, dict):
                    nested = node[name] = {}
                node = nested
    return _lists_from_indexes(root)


def _lists_from_indexes(node: Any) -> Any:
    if not isinstance(node, dict):
        return node
    items = {k: _lists_from_indexes(v) for k, v in node.items()}
    if items and all(_is_index(k) for k in items) and all(str(i) in items for i in range(len(items))):
        return [items[str(i)] for i in range(len(items))]
    return items


_SURROGATE = re.compile("[\ud800-\udfff]")


def _check_json(value: Any) -> None:
    """Refuse what JSON escapes can spell but no text can hold: containers nested deeper than
    MAX_DEPTH, and lone surrogates ("\\ud800"), which UTF-8 cannot encode (every store, hash and
    log line would fail on them). Iterative: any depth is safe to measure."""
    stack = [(value, 1)]
    while stack:
        item, depth = stack.pop()
        if isinstance(item, str):
            if _SURROGATE.search(item):
                raise MalformedBody("The body holds a lone surrogate escape (\\ud800-\\udfff): not valid Unicode.")
        elif isinstance(item, dict | list):
            if depth > MAX_DEPTH:
                raise MalformedBody(f"The body nests deeper than {MAX_DEPTH} levels.")
            if isinstance(item, dict):
                stack.extend((key, depth) for key in item)
                stack.extend((child, depth + 1) for child in item.values())
            else:
                stack.extend((child, depth + 1) for child in item)


def decode(event: dict[str, Any], accepted_media_types: frozenset[str]) -> dict[str, Any]:
    kind = media_type(event.get("headers")) or JSON  # senders that omit it send JSON
    if kind not in accepted_media_types:
        accepted = ", ".join(sorted(accepted_media_types))
        raise UnsupportedMediaType(
            f"Content-Type {kind!r} is not accepted here; send {accepted}.",
            headers={"Accept-Post": accepted},
        )
    data = raw_body(event)
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError:
        raise MalformedBody("The body is not valid UTF-8.") from None
    if kind == FORM:
        try:
            payload: Any = parse_php_form(text)
        except (UnicodeDecodeError, ValueError):
            raise MalformedBody("The form body cannot be decoded.") from None
    else:
        try:
            payload = parse_json(data)
        except (json.JSONDecodeError, ValueError, RecursionError) as exc:
            raise MalformedBody(f"The body is not valid JSON: {exc.__class__.__name__}.") from None
        _check_json(payload)
    if not isinstance(payload, dict) or not payload:
        raise MalformedBody("The body must be a non-empty JSON object or form.")
    return payload
