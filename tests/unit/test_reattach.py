"""`make reattach`: which kept tables it copies from, and that a copy never overwrites what the new
stack wrote since (tools/reattach.py)."""

import boto3
import pytest
from moto import mock_aws

from tools import reattach

STACK = "bitrix24-billing-webhooks"
CURRENT = {"EntitlementsTable": f"{STACK}-EntitlementsTable-NEW", "AccountsTable": f"{STACK}-AccountsTable-NEW"}


def test_the_kept_tables_are_found_by_the_names_cloudformation_gave_them_never_the_stacks_own():
    names = [*CURRENT.values(), f"{STACK}-EntitlementsTable-OLD", f"{STACK}-Other-OLD", "another-EntitlementsTable-X"]
    assert reattach.kept_tables(names, STACK, CURRENT) == {"EntitlementsTable": f"{STACK}-EntitlementsTable-OLD"}


def test_two_kept_tables_of_one_kind_or_none_at_all_are_refused_with_what_to_do():
    twice = [f"{STACK}-EntitlementsTable-OLD1", f"{STACK}-EntitlementsTable-OLD2"]
    with pytest.raises(reattach.Refused, match="2 kept EntitlementsTables"):
        reattach.kept_tables(twice, STACK, CURRENT)
    with pytest.raises(reattach.Refused, match="FROM=<stack>"):
        reattach.kept_tables(list(CURRENT.values()), STACK, CURRENT)


@mock_aws
def test_a_copy_keeps_what_the_new_table_already_holds_and_a_second_copy_copies_nothing():
    dynamodb = boto3.client("dynamodb", region_name="eu-central-1")
    for name in ("old", "new"):
        dynamodb.create_table(
            TableName=name,
            KeySchema=[{"AttributeName": "member_id", "KeyType": "HASH"}],
            AttributeDefinitions=[{"AttributeName": "member_id", "AttributeType": "S"}],
            BillingMode="PAY_PER_REQUEST",
        )
    for member, entitled in (("a", True), ("b", False)):
        dynamodb.put_item(TableName="old", Item={"member_id": {"S": member}, "entitled": {"BOOL": entitled}})
    dynamodb.put_item(TableName="new", Item={"member_id": {"S": "b"}, "entitled": {"BOOL": True}})  # newer

    assert reattach._copy(dynamodb, "old", "new") == (1, 1)
    assert dynamodb.get_item(TableName="new", Key={"member_id": {"S": "b"}})["Item"]["entitled"] == {"BOOL": True}
    assert dynamodb.get_item(TableName="new", Key={"member_id": {"S": "a"}})["Item"]["entitled"] == {"BOOL": True}
    assert reattach._copy(dynamodb, "old", "new") == (0, 2)
