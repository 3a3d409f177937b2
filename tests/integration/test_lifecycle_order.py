"""Late lifecycle events: kept as records, never written over newer installation state, and
answered "stale" (with a Stale metric and a detail saying why) so that the sender and the operator can tell."""

import json

from billing_webhooks.wire.credentials import token_sha256
from tests.integration.test_installations import (  # noqa: F401 (fixtures)
    MEMBER,
    NEW_TOKEN,
    TOKEN,
    acme,
    deliver,
    installed_acme,
    lifecycle,
    payment,
)

INSTALLED_TS = 1466439000  # the sample install's ts


def test_an_update_older_than_the_last_lifecycle_event_is_stale_and_changes_nothing(
    api, table, installations, installed_acme
):
    assert (
        deliver(api, "app_update", lifecycle("app_update", ts=INSTALLED_TS + 200, application_token=NEW_TOKEN))[1][
            "status"
        ]
        == "stored"
    )
    status, answer = deliver(
        api,
        "app_update",
        lifecycle("app_update", ts=INSTALLED_TS + 100, token=NEW_TOKEN, application_token="an-older-token"),
    )
    assert (status, answer["status"]) == (200, "stale")
    assert "newer event" in answer["detail"]  # said why, for whoever reads the answer
    record = installations.get(member_id=MEMBER)
    assert (
        record["application_token_sha256"] == token_sha256(NEW_TOKEN) and record["lifecycle_ts"] == INSTALLED_TS + 200
    )
    assert len(table.items()) == 3  # all three kept as records


def test_an_uninstall_older_than_the_install_is_stale_and_the_portal_stays_installed(
    api, table, installations, installed_acme
):
    status, answer = deliver(api, "app_uninstall", lifecycle("app_uninstall", ts=INSTALLED_TS - 100))
    assert (status, answer["status"]) == (200, "stale")
    assert installations.get(member_id=MEMBER)["status"] == "installed"
    assert deliver(api, "app_payment", payment(ts=INSTALLED_TS + 10))[0] == 200  # still accepted


def test_an_older_payment_is_answered_stale_and_counted(api, table, installations, installed_acme, capsys):
    assert deliver(api, "app_payment", payment(ts=INSTALLED_TS + 500, DAYS="30"))[1]["status"] == "stored"
    capsys.readouterr()
    status, answer = deliver(api, "app_payment", payment(ts=INSTALLED_TS + 400, DAYS="3"))
    assert (status, answer["status"]) == (200, "stale")
    metrics = [json.loads(line) for line in capsys.readouterr().out.splitlines() if line.startswith('{"_aws"')]
    assert any(document.get("Stale") == [1.0] for document in metrics)
    redelivered = deliver(api, "app_payment", payment(ts=INSTALLED_TS + 400, DAYS="3"))
    assert redelivered[1]["status"] == "duplicate"  # a redelivery is a duplicate, stale or not


def test_an_invalid_install_is_refused_before_any_call_to_the_portal(api, table, installations, acme, stack):
    body = lifecycle("app_install")
    body["data"]["VERSION"] = {"not": "a version"}
    status, problem = deliver(api, "app_install", body)
    assert status == 422 and all(error["field"].startswith("data.VERSION") for error in problem["errors"])
    assert stack.bitrix24.requests == []


def test_the_documented_install_and_update_with_string_versions_are_accepted(api, table, installations, acme):
    install = lifecycle("app_install")
    install["data"]["VERSION"] = "1.0.0"
    assert deliver(api, "app_install", install)[1]["status"] == "stored"
    update = lifecycle("app_update", application_token=NEW_TOKEN)
    update["data"].update({"VERSION": "2.1.0", "PREVIOUS_VERSION": "2.0.3"})
    assert deliver(api, "app_update", update)[1]["status"] == "stored"
    assert installations.get(member_id=MEMBER)["app_version"] == "2.1.0"


def test_a_member_id_never_moves_to_another_domain_even_after_its_uninstall(
    api, table, installations, installed_acme, stack
):
    from local import samples
    from local.fake_bitrix24 import Portal

    assert deliver(api, "app_uninstall", lifecycle("app_uninstall", ts=INSTALLED_TS + 100))[1]["status"] == "stored"
    stack.bitrix24.portals["evil.bitrix24.com"] = Portal("acme-access-token", samples.APP_CODE)
    takeover = lifecycle(
        "app_install",
        ts=INSTALLED_TS + 200,
        domain="evil.bitrix24.com",
        client_endpoint="https://evil.bitrix24.com/rest/",
    )
    status, problem = deliver(api, "app_install", takeover)
    assert status == 403 and problem["detail"] == "This portal is installed on another domain."
    assert installations.get(member_id=MEMBER)["domain"] == "acme.bitrix24.com"


def test_the_table_refuses_to_move_a_member_id_even_when_a_race_passes_the_check(stack, installations, installed_acme):
    from datetime import UTC, datetime

    from billing_webhooks.domain import lifecycle as rules
    from billing_webhooks.models.bitrix24 import AppInfo, AppInstallEvent, PortalConfirmation
    from local import samples

    moved = AppInstallEvent.model_validate(
        lifecycle(
            "app_install",
            ts=INSTALLED_TS + 500,
            domain="evil.bitrix24.com",
            client_endpoint="https://evil.bitrix24.com/rest/",
        )
    )
    confirmation = PortalConfirmation(info=AppInfo.model_validate(samples.sample_app_info()), vouched=True)
    assert rules.install(moved, confirmation, token_sha256("evil-token"), datetime.now(UTC)) is None
    assert installations.get(member_id=MEMBER)["domain"] == "acme.bitrix24.com"


def test_a_ts_from_the_future_is_refused_so_it_cannot_freeze_the_portal(api, table, installations, installed_acme):
    import time

    status, problem = deliver(api, "app_payment", payment(ts=int(time.time()) + 3600))
    assert status == 422 and "ahead of our clock" in json.dumps(problem)
    assert table.items() and all(r["notification_type"] == "ONAPPINSTALL" for r in table.items())


def test_an_install_naming_another_oauth_server_is_refused_before_any_call(api, table, installations, acme, stack):
    status, problem = deliver(
        api, "app_install", lifecycle("app_install", server_endpoint="https://evil.example/rest/")
    )
    assert status == 403 and "server_endpoint" in problem["detail"]
    assert stack.bitrix24.requests == [] and installations.get(member_id=MEMBER) is None
