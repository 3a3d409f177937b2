"""`make reattach [FROM=<stack>]`: carry what a deleted stack kept into the deployed one.

`sam delete` keeps the six tables and TokenStoreKey (DeletionPolicy Retain); a stack deployed
again under the same name makes new, empty tables. This copies each kept table's items into its
new twin: the kept tables are found by the names CloudFormation gave them
(`<stack>-<LogicalId>-<suffix>`), the new ones through the stack. An item the new stack already
holds is never overwritten (a conditional put: what it wrote since is newer), so a second run
copies nothing. Entitlements go first, so a decision the copied installations set off continues
their `sequence` instead of starting again at 1.

Portal tokens open only under the key that sealed them: they are copied when the stack was
deployed with the kept key (`make deploy KEPT_TOKEN_STORE_KEY=<arn>`), and skipped, with a line
saying so, when it made a key of its own.

    .venv/bin/python -m tools.reattach [<stack the tables were kept from>]

CloudFormation's resource import would adopt the kept tables instead of copying them; SAM CLI
does not drive an import, and the AWS stand-in the suite rehearses on (moto) has none.
"""

import sys
from typing import Any

from tools import deploy

# The order of the copy: entitlements before the installations whose stream decides them again.
KEPT_TABLES = (
    "EntitlementsTable",
    "AccountsTable",
    "NotificationsTable",
    "InstallationsTable",
    "PortalTokensTable",
    "QuarantineTable",
)


class Refused(Exception):
    """Nothing can be copied: the message says why, in one line."""


def kept_tables(table_names: list[str], kept_from: str, current: dict[str, str]) -> dict[str, str]:
    """Each kept table's name, by the name CloudFormation gave it, never the stack's own table."""
    found = {}
    for logical in KEPT_TABLES:
        candidates = [
            name for name in table_names if name.startswith(f"{kept_from}-{logical}-") and name != current.get(logical)
        ]
        if len(candidates) > 1:
            raise Refused(
                f"{len(candidates)} kept {logical}s of stack {kept_from} ({', '.join(sorted(candidates)[:3])}): "
                "delete or rename the ones not to carry over, then run again"
            )
        if candidates:
            found[logical] = candidates[0]
    if not found:
        raise Refused(f"no table kept from a stack named {kept_from}: give its name with make reattach FROM=<stack>")
    return found


def _copy(dynamodb: Any, source: str, target: str) -> tuple[int, int]:
    """(copied, already there): every item of `source` put into `target` unless its key is there."""
    from botocore.exceptions import ClientError

    keys = [part["AttributeName"] for part in dynamodb.describe_table(TableName=target)["Table"]["KeySchema"]]
    absent = " AND ".join(f"attribute_not_exists(#k{index})" for index in range(len(keys)))
    names = {f"#k{index}": key for index, key in enumerate(keys)}
    copied = kept = 0
    for page in dynamodb.get_paginator("scan").paginate(TableName=source, ConsistentRead=True):
        for item in page["Items"]:
            try:
                dynamodb.put_item(
                    TableName=target, Item=item, ConditionExpression=absent, ExpressionAttributeNames=names
                )
                copied += 1
            except ClientError as error:
                if error.response["Error"]["Code"] != "ConditionalCheckFailedException":
                    raise
                kept += 1
    return copied, kept


def reattach(kept_from: str | None = None) -> list[str]:
    """Copy the kept tables into the deployed stack's; the lines to print."""
    import boto3

    settings = deploy.deploy_settings()
    stack_name = settings.get("stack_name", deploy.DEFAULT_STACK_NAME)
    region = settings.get("region")
    kept_from = kept_from or stack_name
    cloudformation = boto3.client("cloudformation", region_name=region)
    dynamodb = boto3.client("dynamodb", region_name=region)
    current = deploy.stack_resources(cloudformation, stack_name)
    table_names = [name for page in dynamodb.get_paginator("list_tables").paginate() for name in page["TableNames"]]
    lines = []
    for logical, source in kept_tables(table_names, kept_from, current).items():
        if logical not in current:
            raise Refused(f"stack {stack_name} in {region} has no {logical}: deploy it first (make deploy)")
        if logical == "PortalTokensTable" and "TokenStoreKey" in current:
            lines.append(
                f"{logical}: skipped: stack {stack_name} seals with a key of its own, and the kept tokens open only "
                "under the kept key (make deploy KEPT_TOKEN_STORE_KEY=<its ARN>, then make reattach again)"
            )
            continue
        copied, kept = _copy(dynamodb, source, current[logical])
        lines.append(f"{logical}: {copied} copied from {source}" + (f", {kept} already there (kept)" if kept else ""))
    return lines


def main(argv: list[str]) -> int:
    from botocore.exceptions import BotoCoreError, ClientError

    try:
        for line in reattach(argv[0] if argv else None):
            print(line)
    except Refused as refused:
        print(f"make reattach: {refused}", file=sys.stderr)
        return 2
    except (ClientError, BotoCoreError) as error:
        print(f"make reattach: {error}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
