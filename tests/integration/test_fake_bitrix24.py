"""The fake Bitrix24 can be driven (docs/development.md): `PUT /_portals/<domain>` sets what its
app.info answers and how its OAuth server answers, `GET` says so and counts the calls it took.
A person plays "the subscription ran out" with it; here an install then reads the licence expired."""

import json

import requests

from local import samples
from tests.integration.test_deliveries import post
from tests.integration.test_regions import JSON, docs_body


def test_a_portal_played_expired_installs_with_its_licence_read_expired(api, table, installations, stack):
    control = f"http://127.0.0.1:{stack.bitrix24.port}/_portals/some-domain.bitrix24.ru"
    body = docs_body("ru-onappinstall")
    installations.clear()
    created = requests.put(
        control,
        json={
            "member_id": body["auth"]["member_id"],
            "access_token": body["auth"]["access_token"],
            "STATUS": "P",
            "PAYMENT_EXPIRED": "Y",
            "DAYS": -3,
        },
        timeout=10,
    )
    assert created.status_code == 200, created.text
    stack.bitrix24.portals["some-domain.bitrix24.ru"].refresh_token = body["auth"]["refresh_token"]
    status, _, answer = post(api, "/bitrix24/app-install", json.dumps(body), JSON)
    assert (status, answer["status"]) == (200, "stored"), answer
    licence = requests.get(f"{api.url}/portals/{body['auth']['member_id']}", timeout=10).json()["licence"]
    assert (licence["state"], licence["source"], licence["status"]) == ("expired", "app.info", "P")
    played = requests.get(control, timeout=10).json()
    assert played["calls"]["app.info"] == 1 and played["calls"]["refresh"] == 1 and played["calls"]["event.bind"] == 1


def test_a_control_request_of_a_field_it_does_not_know_is_400(stack):
    control = f"http://127.0.0.1:{stack.bitrix24.port}/_portals/{samples.PORTAL_DOMAIN}"
    assert requests.put(control, json={"TOKEN": "x"}, timeout=10).status_code == 400
    assert requests.get(control.replace(samples.PORTAL_DOMAIN, "nobody.bitrix24.com"), timeout=10).status_code == 404
