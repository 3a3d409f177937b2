"""Credentials and portals the local stack accepts, and the bodies the sample events in events/ carry.

Made-up values for local use only; in AWS the secrets are generated or set by the operator, and a
portal becomes known by installing the app.
"""

import copy

from local import seeds

BILLING_TOKEN = "local-billing-token"
BILLING_SIGNING_KEY = "local-signing-key"  # used when BILLING_SIGNATURE=required
PORTAL_MEMBER_ID = "a223c6b3710f85df22e9377d6c4f7553"
PORTAL_DOMAIN = "some-domain.bitrix24.com"
PORTAL_APPLICATION_TOKEN = "51856fefc120afa4b628cc82d3935cce"
PORTAL_ACCESS_TOKEN = "s6p6eclrvim6da22ft9ch94ekreb52lv"
APP_CODE = "bitrix.gds_company"  # the seed's app: what app.info must name
# A portal installed by hand: known only from the fallback secret, never from an install.
HANDMADE_MEMBER_ID = "b1c2d3e4f5a6b7c8d9e0f1a2b3c4d5e6"
HANDMADE_APPLICATION_TOKEN = "handmade-application-token-0001"

# Secret logical id in template.yaml -> the JSON value the local stack stores under that name.
SECRET_VALUES = {
    "BillingWebhookSecret": {"current": BILLING_TOKEN},
    "BillingSigningSecret": {"current": BILLING_SIGNING_KEY},
    "Bitrix24PortalSecret": {HANDMADE_MEMBER_ID: HANDMADE_APPLICATION_TOKEN},
    "RescueSigningSecret": {"current": "local-rescue-signing-key"},
    "Bitrix24AppCredentials": {"client_id": "local.app.0001", "client_secret": "local-app-client-secret"},
}
# Template parameters without a default, as the local stack sets them.
PARAMETERS = {"Bitrix24AppCode": APP_CODE}


def bitrix24_payment_body() -> dict:
    """Seed 000 plus the `member_id` and `application_token` every real event carries."""
    body = seeds.bitrix24_payment_seed()
    body["auth"]["member_id"] = PORTAL_MEMBER_ID
    body["auth"]["application_token"] = PORTAL_APPLICATION_TOKEN
    return body


def _lifecycle_body(event: str, data: dict, ts: str, user_tokens: bool) -> dict:
    auth = copy.deepcopy(bitrix24_payment_body()["auth"])
    if user_tokens:  # install and update come with the installing user's OAuth tokens
        auth.update(
            {
                "access_token": PORTAL_ACCESS_TOKEN,
                "expires": str(int(ts) + 3600),
                "expires_in": "3600",
                "scope": "crm",
                "status": "S",
                "user_id": "1",
                "refresh_token": "q5f0idlro1tn4gvcxa2ojeo4hp16hwbs",
            }
        )
    return {"event": event, "event_handler_id": "12", "data": data, "ts": ts, "auth": auth}


def bitrix24_install_body() -> dict:
    return _lifecycle_body(
        "ONAPPINSTALL",
        {"VERSION": "1", "ACTIVE": "Y", "INSTALLED": "Y", "LANGUAGE_ID": "en"},
        "1466439000",
        user_tokens=True,
    )


def bitrix24_update_body() -> dict:
    return _lifecycle_body(
        "ONAPPUPDATE", {"VERSION": "2", "PREVIOUS_VERSION": "1", "LANGUAGE_ID": "en"}, "1466439500", user_tokens=True
    )


def bitrix24_uninstall_body() -> dict:
    return _lifecycle_body("ONAPPUNINSTALL", {"LANGUAGE_ID": "en", "CLEAN": "0"}, "1466440000", user_tokens=False)


def sample_app_info() -> dict:
    """What the sample portal's app.info answers (seed 003's shape, the sample app's values)."""
    return {
        "ID": "7",
        "CODE": APP_CODE,
        "VERSION": 1,
        "STATUS": "S",
        "INSTALLED": True,
        "PAYMENT_EXPIRED": "N",
        "DAYS": 28,
        "LICENSE": "en_project",
    }


# Function directory -> the body of its sample event.
BITRIX24_BODIES = {
    "app_payment": bitrix24_payment_body,
    "app_install": bitrix24_install_body,
    "app_update": bitrix24_update_body,
    "app_uninstall": bitrix24_uninstall_body,
}
