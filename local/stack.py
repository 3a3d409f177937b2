"""The whole local cloud in one object: DynamoDB Local + moto server with the template's resources,
and a fake Bitrix24 whose sample portal answers app.info."""

import os
import shutil
import sys
import tempfile
from pathlib import Path
from typing import Any

from local import provision, samples, services, template
from local.clock import TestClock
from local.fake_bitrix24 import FakeBitrix24, Portal


class LocalStack:
    def __init__(
        self, dynamodb_port: int | None = None, moto_port: int | None = None, bitrix24_port: int | None = None
    ) -> None:
        self.dynamodb_port, self.moto_port, self.bitrix24_port = dynamodb_port, moto_port, bitrix24_port
        self.dynamodb: Any = None
        self.moto: Any = None
        self.bitrix24: Any = None
        # On disk rather than in memory: DynamoDB Local can go down and come back with its data.
        self.dynamodb_data = Path(tempfile.mkdtemp(prefix="dynamodb-local-"))
        self.clock = TestClock()  # the stack's one clock: the handlers, the jobs and the fake Bitrix24 read it

    def start(self) -> "LocalStack":
        try:
            self.dynamodb = services.start_dynamodb_local(self.dynamodb_port, self.dynamodb_data)
            self.moto = services.start_moto(self.moto_port)
            self.endpoints = services.endpoint_environment(self.dynamodb.url, self.moto.url)
            self.resources = provision.create_resources(self.endpoints)
            self.bitrix24 = FakeBitrix24(
                port=self.bitrix24_port or 0, app_code=samples.APP_CODE, clock=self.clock
            ).start()
            self.reset_portals()
        except BaseException:
            self.stop()
            raise
        self.environment = provision.handler_environment(self.endpoints) | self.bitrix24.environment
        return self

    def _empty_rest_buckets(self) -> None:
        import boto3

        dynamodb = boto3.Session(
            aws_access_key_id=self.endpoints["AWS_ACCESS_KEY_ID"],
            aws_secret_access_key=self.endpoints["AWS_SECRET_ACCESS_KEY"],
            region_name=provision.REGION,
        ).client("dynamodb", endpoint_url=self.endpoints["AWS_ENDPOINT_URL_DYNAMODB"])
        table = "RestBucketsTable"  # locally, each table is named by its logical id
        for page in dynamodb.get_paginator("scan").paginate(TableName=table, ProjectionExpression="portal"):
            for item in page["Items"]:
                dynamodb.delete_item(TableName=table, Key={"portal": item["portal"]})

    def stop_dynamodb(self) -> None:
        """An outage: DynamoDB Local goes away (connections refused) until start_dynamodb()."""
        self.dynamodb.stop()

    def start_dynamodb(self) -> None:
        self.dynamodb = services.start_dynamodb_local(self.dynamodb.port, self.dynamodb_data)

    def reset_portals(self) -> None:
        """Only the sample portal, answering app.info as an installed copy of the sample app; every
        portal's REST bucket empty again, on the fake's side and ours (RestBucketsTable)."""
        self.bitrix24.portals.clear()
        self.bitrix24.requests.clear()
        self._empty_rest_buckets()
        self.bitrix24.portals[samples.PORTAL_DOMAIN] = Portal(
            samples.PORTAL_ACCESS_TOKEN,
            samples.APP_CODE,
            member_id=samples.PORTAL_MEMBER_ID,
            application_token=samples.PORTAL_APPLICATION_TOKEN,
        )
        credentials = samples.SECRET_VALUES["Bitrix24AppCredentials"]
        self.bitrix24.app_credentials = (credentials["client_id"], credentials["client_secret"])

    def keep_sample_tokens(self) -> None:
        """The token store holds the sample portal's tokens, as its install would have kept them
        (the pair the fake's OAuth server issued it), so the licence sync can ask its app.info.
        Needs the environment in this process (export_to_process)."""
        from billing_webhooks.domain import portal_tokens
        from billing_webhooks.settings import settings

        portal = self.bitrix24.portals[samples.PORTAL_DOMAIN]
        auth = samples.bitrix24_install_body()["auth"]
        answer = {"access_token": portal.access_token, "refresh_token": portal.refresh_token, "expires_in": 3600}
        if not portal_tokens.keep_issued(samples.PORTAL_MEMBER_ID, answer, auth["server_endpoint"]):
            raise RuntimeError("the sample portal's tokens could not be kept (see the log line above)")
        settings.cache_clear()  # read as a function would; whoever runs next reads its own environment

    def check_sample_licence(self) -> str:
        """The sample portal's first licence check, as the licence sync's next run would make it:
        its install event is from 2016, so until app.info is asked its licence reads expired."""
        from billing_webhooks.jobs.portal_sync import sync_now
        from billing_webhooks.settings import settings

        outcome = sync_now([samples.PORTAL_MEMBER_ID])[0]["outcome"]
        settings.cache_clear()
        return outcome

    def export_to_process(self) -> None:
        """Handlers run in this process: give them the template's environment and the layer."""
        os.environ.update(self.environment)
        template.use_layer()
        from billing_webhooks import clock

        clock.use(self.clock.time)

    def stop(self) -> None:
        if "billing_webhooks.clock" in sys.modules:
            sys.modules["billing_webhooks.clock"].use(None)
        for service in (self.bitrix24, self.moto, self.dynamodb):
            if service is not None:
                service.stop()
        shutil.rmtree(self.dynamodb_data, ignore_errors=True)

    def __enter__(self) -> "LocalStack":
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
