"""Every environment variable the layer reads, in one place, read once per container, as one
typed model: a value of the wrong type fails the cold start naming its variable, as a missing
required one does.

The template's Globals set them all for every function (`local/env.json` for `sam local invoke`,
the local stack for `make dev` and the tests). `Webhook` reads the settings when a function's
module is loaded.
"""

import os
from functools import cache
from typing import Literal

from pydantic import BaseModel, ConfigDict, PositiveFloat, PositiveInt, ValidationError


class Settings(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    # Tables, topic, queues, keys: required.
    table_name: str
    installations_table_name: str
    accounts_table_name: str
    quarantine_table_name: str
    alert_topic_arn: str
    rescue_queue_url: str
    rescue_dead_letter_queue_url: str
    portal_token_key_id: str
    portal_tokens_table_name: str
    token_store_key_id: str
    entitlements_table_name: str
    billing_events_bus_name: str
    projection_failures_queue_url: str
    # Each portal's REST bucket shared across containers (data/rest_buckets.py); empty: per container only.
    rest_buckets_table_name: str = ""
    # The Bitrix24 request log's level (observability.rest_log): INFO in AWS, whatever LOG_LEVEL
    # says (Bitrix24's Market asks for these logs); make dev and the simulation quiet it.
    bitrix24_rest_log_level: Literal["DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL"] = "INFO"
    # Secrets Manager secret ids: required.
    billing_secret_id: str
    billing_signing_secret_id: str
    bitrix24_secret_id: str
    bitrix24_app_credentials_id: str
    rescue_signing_secret_id: str
    # Behaviour, with the template's defaults.
    billing_signature: Literal["off", "required"] = "off"  # "required": billing deliveries must be signed too
    bitrix24_app_code: str = ""  # installs naming another CODE are refused; empty: none are believed
    # Every zone of Bitrix24's cloud: the template's Bitrix24DomainSuffixes (a test holds them equal).
    bitrix24_domain_suffixes: str = (
        "bitrix24.com,bitrix24.eu,bitrix24.de,bitrix24.es,bitrix24.com.br,bitrix24.fr,bitrix24.it,"
        "bitrix24.pl,bitrix24.com.tr,bitrix24.uk,bitrix24.in,bitrix24.cn,bitrix24.id,bitrix24.vn,"
        "bitrix24.jp,bitrix24.ru,bitrix24.by,bitrix24.kz,bitrix24.ua"
    )
    bitrix24_oauth_hosts: str = "oauth.bitrix.info,oauth.bitrix24.tech"
    bitrix24_portal_timeout_seconds: PositiveFloat = 3.0
    # A refresh is waited for as long as Bitrix24's OAuth server takes (seconds, not one): an answer
    # that comes after we gave up has rotated the pair all the same.
    bitrix24_oauth_timeout_seconds: PositiveFloat = 20.0
    secrets_cache_seconds: float = 300.0
    quarantine_days: PositiveFloat = 30.0
    quarantine_cap_per_sender: PositiveInt = 1000
    licence_sync_hours: PositiveFloat = 720.0  # the keep-alive: at most this long between two checks of a portal
    licence_sync_concurrency: PositiveInt = 16  # portals one sync run checks at once
    entitlement_grace_days: float = 3.0  # an ended or unpaid licence still grants this long
    aws_lambda_function_name: str = ""  # set by Lambda itself

    @property
    def signatures_required(self) -> bool:
        return self.billing_signature == "required"


@cache
def settings() -> Settings:
    """The settings of this container; `settings.cache_clear()` reads the environment again."""
    values = {name: os.environ[name.upper()] for name in Settings.model_fields if os.environ.get(name.upper())}
    try:
        return Settings.model_validate(values)
    except ValidationError as error:
        missing = [str(e["loc"][0]).upper() for e in error.errors() if e["type"] == "missing"]
        wrong = [f"{str(e['loc'][0]).upper()} ({e['msg']})" for e in error.errors() if e["type"] != "missing"]
        problems = ([f"Missing environment variable(s): {', '.join(missing)}"] if missing else []) + (
            [f"Environment variable(s) of the wrong form: {', '.join(wrong)}"] if wrong else []
        )
        raise RuntimeError("; ".join(problems)) from None
