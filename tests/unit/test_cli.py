"""billing-webhooks reads the deployed stack's own tables: found through CloudFormation."""

import os

import boto3
import pytest
from botocore.stub import Stubber

from tools import cli


def test_the_deployed_stack_named_in_samconfig_gives_the_cli_its_tables(monkeypatch):
    client = boto3.client(
        "cloudformation", region_name="eu-central-1", aws_access_key_id="x", aws_secret_access_key="x"
    )
    resources = {
        "NotificationsTable": "prod-NotificationsTable-1A",
        "AccountsTable": "prod-AccountsTable-2B",
        "InstallationsTable": "prod-InstallationsTable-3C",
    }
    stubber = Stubber(client)
    stubber.add_response(
        "list_stack_resources",
        {
            "StackResourceSummaries": [
                {
                    "LogicalResourceId": name,
                    "PhysicalResourceId": physical,
                    "ResourceType": "AWS::DynamoDB::Table",
                    "LastUpdatedTimestamp": "2026-11-25T00:00:00Z",
                    "ResourceStatus": "UPDATE_COMPLETE",
                }
                for name, physical in resources.items()
            ]
        },
        {"StackName": "bitrix24-billing-webhooks"},
    )
    monkeypatch.setattr(boto3, "client", lambda *args, **kwargs: client)
    monkeypatch.setattr(os, "environ", {})  # what the CLI sets stays out of the other tests' environment
    with stubber:
        cli.use_deployed_stack(None, "eu-central-1")
    assert os.environ["TABLE_NAME"] == "prod-NotificationsTable-1A"
    assert os.environ["ACCOUNTS_TABLE_NAME"] == "prod-AccountsTable-2B"
    assert os.environ["INSTALLATIONS_TABLE_NAME"] == "prod-InstallationsTable-3C"
    assert os.environ["AWS_DEFAULT_REGION"] == "eu-central-1"


def test_the_cli_refuses_what_it_cannot_read_with_a_usage_line(capsys):
    with pytest.raises(SystemExit):
        cli.main(["accounts"])
    assert "usage: billing-webhooks" in capsys.readouterr().err
