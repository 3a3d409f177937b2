"""Garbage in: generated bodies, headers and content types on every route of the local API.

Two generators: our own hypothesis strategies (random bytes, random JSON, random content types and
headers, and seed payloads broken in one required field, sent with valid credentials so that
validation itself is exercised; and the hostile shapes of hostile_shape), and schemathesis driven by the OpenAPI document the local API
serves at /openapi.json. Every answer must be a 4xx problem document; none may be 5xx; nothing may
be written to either table.
"""

import json
import string
from collections import Counter

import pytest
import requests
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from local import openapi, samples, seeds, template
from local.wire import php_form_encode
from tests.integration.test_rescue import rescue_queue  # noqa: F401 (fixture)

ROUTES = template.routes()
OWN_EXAMPLES = 1000  # per route, from our strategies
SCHEMATHESIS_EXAMPLES = 100  # per route and generation mode
SETTINGS = settings(
    deadline=None,
    derandomize=True,
    database=None,
    print_blob=True,
    suppress_health_check=[
        HealthCheck.too_slow,
        HealthCheck.function_scoped_fixture,
        HealthCheck.data_too_large,
        HealthCheck.filter_too_much,
    ],
)
JSON, FORM = "application/json", "application/x-www-form-urlencoded"
sent: Counter = Counter()  # route path -> requests sent by this module


def seed_payload(route: template.Route) -> dict:
    name = route.code_dir.name
    if name in samples.BITRIX24_BODIES:
        return samples.BITRIX24_BODIES[name]()
    kind = route.function.removesuffix("Function")
    return json.loads(seeds.billing_seed_texts()[kind])


def credentials(route: template.Route) -> dict[str, str]:
    return {"Authorization": f"Bearer {samples.BILLING_TOKEN}"} if route.path.startswith("/billing/") else {}


def encode(payload: object, media_type: str) -> bytes:
    if media_type == FORM and isinstance(payload, dict):
        return php_form_encode(payload).encode()
    return json.dumps(payload).encode()


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=20),
    lambda children: st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=10), children, max_size=4),
    max_leaves=12,
)
# A value of the wrong JSON shape for a required field: a list (no top-level field is one), or an
# object where the seed has a scalar (an object whose fields are all optional would validate).
lists = st.lists(st.integers() | st.text(max_size=5), min_size=1, max_size=3)
header_names = st.text(string.ascii_letters + string.digits + "-", min_size=1, max_size=20).filter(
    lambda name: name.lower() not in {"content-length", "host", "transfer-encoding", "connection", "expect"}
)
header_values = st.text(string.ascii_letters + string.digits + " -_.;=/", max_size=40).map(str.strip)
content_types = st.one_of(
    st.sampled_from(
        [JSON, FORM, "text/plain", "application/xml", "multipart/form-data", "application/json; charset=utf-8", ""]
    ),
    header_values,
)


def required_fields(route: template.Route) -> list[str]:
    """What the route's model requires (auth aside: without it, authentication refuses first)."""
    document = json.loads(openapi.DOCUMENT.read_text())
    body = document["paths"][route.path]["post"]["requestBody"]["content"][JSON]["schema"]
    schema = document["components"]["schemas"][body["$ref"].rsplit("/", 1)[-1]]
    return sorted(name for name in schema["required"] if name != "auth")


@st.composite
def broken_seed(draw, route: template.Route) -> tuple[bytes, str]:
    """The route's seed with one required field removed or given the wrong shape; valid credentials."""
    payload = seed_payload(route)
    name = draw(st.sampled_from(required_fields(route)))
    if draw(st.booleans()):
        del payload[name]
    else:
        scalar = not isinstance(payload[name], dict)
        payload[name] = draw(lists | st.just({"x": {"y": 1}}) if scalar else lists)
    media_type = FORM if route.path.startswith("/bitrix24/") and draw(st.booleans()) else JSON
    return encode(payload, media_type), media_type


@st.composite
def hostile_shape(draw, route: template.Route) -> tuple[bytes, str]:
    """What cost us 5xx, parked parcels or seconds of CPU before: deep keys, `[]` floods, ids longer
    than DynamoDB keys, numbers DynamoDB refuses, deep JSON; sent with valid credentials."""
    payload = seed_payload(route)
    bitrix24 = route.path.startswith("/bitrix24/")
    shape = draw(st.sampled_from(["deep-keys", "append-flood", "long-id", "huge-number", "deep-json"]))
    if shape == "deep-keys":
        return (
            f"auth[member_id]={payload.get('auth', {}).get('member_id', 'm')}&data{'[a]' * draw(st.integers(31, 3000))}=x".encode(),
            FORM,
        )
    if shape == "append-flood":
        return "&".join(["d[]="] * draw(st.integers(1000, 13000))).encode(), FORM
    if shape == "long-id":
        if bitrix24:
            payload["auth"]["member_id"] = "m" * draw(st.integers(129, 5000))
        else:
            payload["id"] = "x" * draw(st.integers(2049, 5000))
        return json.dumps(payload).encode(), JSON
    if shape == "huge-number":
        number = draw(st.sampled_from(["1e999999", "9" * 41, str(10**40), "-1e-131"]))
        return (json.dumps(payload)[:-1] + f', "n": [{number}]}}').encode(), JSON
    depth = draw(st.integers(31, 5000))
    return (json.dumps(payload)[:-1] + ', "deep": ' + "[" * depth + "]" * depth + "}").encode(), JSON


@st.composite
def garbage(draw, route: template.Route) -> tuple[bytes, dict[str, str]]:
    kind = draw(st.sampled_from(["bytes", "json", "broken", "oversized", "hostile"]))
    headers = dict(draw(st.dictionaries(header_names, header_values, max_size=3)))
    if kind in ("broken", "hostile"):
        body, media_type = draw(broken_seed(route) if kind == "broken" else hostile_shape(route))
        return body, {**headers, **credentials(route), "Content-Type": media_type}
    if draw(st.booleans()):
        headers.update(credentials(route))
    if kind == "bytes":
        body = draw(st.binary(max_size=300))
    elif kind == "json":
        body = json.dumps(draw(json_values)).encode()
    else:
        body = b'{"id": "' + b"x" * (65 * 1024) + b'"}'
    headers["Content-Type"] = draw(content_types)
    return body, headers


def assert_refused(response) -> None:
    """A 4xx problem document (a requests or a schemathesis response)."""
    assert 400 <= response.status_code < 500, (response.status_code, response.text[:300])
    content_type = response.headers.get("content-type")
    content_type = content_type[0] if isinstance(content_type, list) else content_type
    assert content_type == "application/problem+json", (response.status_code, content_type)
    problem = response.json()
    assert problem["status"] == response.status_code and problem["title"] and problem["type"].startswith("urn:")


@pytest.fixture
def nothing_written(stack, dynamodb, table, installations, rescue_queue):  # noqa: F811
    before = installations.items()
    yield
    assert table.items() == [], "a refused delivery was stored"
    assert installations.items() == before, "a refused delivery changed an installation"
    assert rescue_queue.parcels() == [], "a refused delivery was parked"


@pytest.mark.parametrize("route", ROUTES, ids=lambda route: route.path)
def test_generated_garbage_is_always_a_4xx_problem_and_never_stored(api, nothing_written, route):
    session = requests.Session()

    @settings(SETTINGS, max_examples=OWN_EXAMPLES)
    @given(garbage(route))
    def post_garbage(request: tuple[bytes, dict[str, str]]) -> None:
        body, headers = request
        sent[route.path] += 1
        assert_refused(session.post(api.url + route.path, data=body, headers=headers, timeout=30))

    post_garbage()
    assert sent[route.path] >= OWN_EXAMPLES


@pytest.fixture(scope="module")
def served_schema(api):
    import schemathesis

    document = requests.get(api.url + "/openapi.json", timeout=10)
    assert document.status_code == 200 and document.json() == json.loads(openapi.DOCUMENT.read_text())
    return schemathesis.openapi.from_url(api.url + "/openapi.json")


@pytest.mark.parametrize("route", ROUTES, ids=lambda route: route.path)
def test_schemathesis_cases_from_the_served_openapi_document_are_4xx_problems(
    api, served_schema, nothing_written, route
):
    """Positive (schema-valid bodies, no valid credentials) and negative (schema-violating) cases."""
    from schemathesis import GenerationMode

    operation = served_schema[route.path]["POST"]
    session = requests.Session()
    for mode in (GenerationMode.POSITIVE, GenerationMode.NEGATIVE):

        @settings(SETTINGS, max_examples=SCHEMATHESIS_EXAMPLES)
        @given(operation.as_strategy(mode))
        def call(case) -> None:
            sent[route.path] += 1
            assert_refused(case.call(base_url=api.url, session=session))

        call()


def test_the_committed_openapi_document_is_what_the_functions_bind(stack):
    assert openapi.DOCUMENT.read_text() == openapi.text(), "run `make openapi`"
    document = json.loads(openapi.DOCUMENT.read_text())
    assert set(document["paths"]) == {route.path for route in ROUTES + template.read_routes()}
    assert document["paths"]["/accounts/{account_id}"]["get"]["security"] == [{"sigv4": []}]
    unpaid = document["paths"]["/billing/unpaid-invoice"]["post"]
    assert set(unpaid["requestBody"]["content"]) == {JSON} and unpaid["security"]
    assert set(document["paths"]["/bitrix24/app-payment"]["post"]["requestBody"]["content"]) == {JSON, FORM}
    assert "UnPaidInvoice" in document["components"]["schemas"]
