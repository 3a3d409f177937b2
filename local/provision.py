"""Create on the local services what template.yaml declares: the tables, topics, queues, secrets
and KMS aliases.

Read from the template, not restated: a new index or secret there shows up here by itself.
"""

import json
from datetime import UTC, datetime
from typing import Any

import boto3

from local import samples, template
from local.services import REGION

ACCOUNT_ID = "123456789012"  # moto's account
ALERTS_QUEUE = "local-alerts"  # left for any consumer to read
EVENTS_QUEUE = "local-events"  # every event of BillingEventsBus: `make events` prints them
CONSOLE_QUEUE = "local-alerts-console"  # the stack's own: `make dev` prints what arrives here

_TABLE_PROPERTIES = ("AttributeDefinitions", "KeySchema", "GlobalSecondaryIndexes", "BillingMode")


def physical_ids(sqs_endpoint: str = "") -> dict[str, str]:
    """What a !Ref to each resource resolves to on the local stack (a queue's: its URL)."""
    ids = {}
    for name in template.resources("AWS::SQS::Queue"):
        ids[name] = queue_url(sqs_endpoint, name)
    for name in template.resources("AWS::DynamoDB::Table"):
        ids[name] = name
    for name in template.resources("AWS::SNS::Topic"):
        ids[name] = f"arn:aws:sns:{REGION}:{ACCOUNT_ID}:{name}"
    for name in template.resources("AWS::SecretsManager::Secret"):
        ids[name] = name
    for name in template.resources("AWS::KMS::Alias"):
        ids[name] = f"alias/{name}"
    for name in template.resources("AWS::Events::EventBus"):
        ids[name] = name
    return ids


def queue_url(sqs_endpoint: str, name: str) -> str:
    return f"{sqs_endpoint}/{ACCOUNT_ID}/{name}"  # as moto names it


def handler_environment(endpoints: dict[str, str]) -> dict[str, str]:
    """The template's Globals environment, with the local endpoints winning over its empty placeholders."""
    env = template.global_environment(physical_ids(endpoints["AWS_ENDPOINT_URL_SQS"]), samples.PARAMETERS)
    env.update(endpoints)
    return env


def create_resources(endpoints: dict[str, str]) -> dict[str, Any]:
    session = boto3.Session(
        aws_access_key_id=endpoints["AWS_ACCESS_KEY_ID"],
        aws_secret_access_key=endpoints["AWS_SECRET_ACCESS_KEY"],
        region_name=REGION,
    )
    dynamodb = session.client("dynamodb", endpoint_url=endpoints["AWS_ENDPOINT_URL_DYNAMODB"])
    for name, resource in template.resources("AWS::DynamoDB::Table").items():
        props = {key: resource["Properties"][key] for key in _TABLE_PROPERTIES if key in resource["Properties"]}
        stream = resource["Properties"].get("StreamSpecification")
        if stream:  # CloudFormation's form lacks the API's StreamEnabled
            props["StreamSpecification"] = {"StreamEnabled": True, **stream}
        dynamodb.create_table(TableName=name, **props)
        dynamodb.get_waiter("table_exists").wait(TableName=name)

    secrets = session.client("secretsmanager", endpoint_url=endpoints["AWS_ENDPOINT_URL_SECRETS_MANAGER"])
    for name in template.resources("AWS::SecretsManager::Secret"):
        secrets.create_secret(Name=name, SecretString=json.dumps(samples.SECRET_VALUES[name]))

    install_sample_portal(dynamodb)

    kms = session.client("kms", endpoint_url=endpoints["AWS_ENDPOINT_URL_KMS"])
    for name in template.resources("AWS::KMS::Alias"):
        kms.create_alias(AliasName=physical_ids()[name], TargetKeyId=kms.create_key()["KeyMetadata"]["KeyId"])

    sns = session.client("sns", endpoint_url=endpoints["AWS_ENDPOINT_URL_SNS"])
    sqs = session.client("sqs", endpoint_url=endpoints["AWS_ENDPOINT_URL_SQS"])
    topics = {name: sns.create_topic(Name=name)["TopicArn"] for name in template.resources("AWS::SNS::Topic")}
    queues = {}
    for name in template.resources("AWS::SQS::Queue"):  # the rescue queues
        queues[name] = sqs.create_queue(QueueName=name)["QueueUrl"]
        if queues[name] != queue_url(endpoints["AWS_ENDPOINT_URL_SQS"], name):
            raise RuntimeError(f"moto named queue {name} {queues[name]}, not as physical_ids() says")
    for queue in (ALERTS_QUEUE, CONSOLE_QUEUE):
        queues[queue] = sqs.create_queue(QueueName=queue)["QueueUrl"]
        arn = sqs.get_queue_attributes(QueueUrl=queues[queue], AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
        sns.subscribe(TopicArn=topics["AlertsTopic"], Protocol="sqs", Endpoint=arn)
    # The stack's event buses, each with a rule that delivers every event it carries to local-events.
    events = session.client("events", endpoint_url=endpoints["AWS_ENDPOINT_URL_EVENTBRIDGE"])
    queues[EVENTS_QUEUE] = sqs.create_queue(QueueName=EVENTS_QUEUE)["QueueUrl"]
    events_arn = sqs.get_queue_attributes(QueueUrl=queues[EVENTS_QUEUE], AttributeNames=["QueueArn"])["Attributes"][
        "QueueArn"
    ]
    for name in template.resources("AWS::Events::EventBus"):
        events.create_event_bus(Name=name)
        events.put_rule(
            Name=f"{name}-to-local-events", EventBusName=name, EventPattern=json.dumps({"source": ["billing-webhooks"]})
        )
        events.put_targets(
            Rule=f"{name}-to-local-events", EventBusName=name, Targets=[{"Id": "local-events", "Arn": events_arn}]
        )
    return {"topics": topics, "queues": queues}


def install_sample_portal(dynamodb: Any) -> None:
    """The sample portal, installed as ONAPPINSTALL would have installed it, so the sample
    events work from the start."""
    template.use_layer()
    from billing_webhooks.data.toolkit import to_item
    from billing_webhooks.domain.lifecycle import installation_record
    from billing_webhooks.models.bitrix24 import AppInfo, AppInstallEvent
    from billing_webhooks.wire.credentials import token_sha256

    body = samples.bitrix24_install_body()
    event = AppInstallEvent.model_validate(body)
    info = AppInfo.model_validate(samples.sample_app_info())
    record = installation_record(event, info, token_sha256(body["auth"]["application_token"]), datetime.now(UTC))
    dynamodb.put_item(TableName=physical_ids()["InstallationsTable"], Item=to_item(record))
