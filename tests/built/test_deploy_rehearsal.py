"""`make deploy` as a user types it, twice, against moto in server mode (AWS_ENDPOINT_URL): the
first run answers its questions from make variables on a closed input and creates the stack, the
second asks nothing and updates it. Run in a copy of the repository, so samconfig.toml here stays
as committed; the copy shares this checkout's venvs."""

import os
import shutil
import subprocess
import time
import tomllib
from pathlib import Path

import boto3
import pytest

from local import services
from local.template import ROOT
from tests.conftest import HOST_ENVIRONMENT

pytestmark = pytest.mark.slow
SKIPPED = {
    ".git",
    ".venv",
    ".venv-sam",
    ".venv-checkov",
    "node_modules",
    ".aws-sam",
    ".cache",
    ".pytest_cache",
    "__pycache__",
}
REGION = "eu-central-1"


def _copy_of_the_repository(target: Path) -> Path:
    def ignored(folder: str, names: list[str]) -> set[str]:
        return {name for name in names if name in SKIPPED or name.endswith(".egg-info")}

    shutil.copytree(ROOT, target, ignore=ignored)  # copy2: times kept, so make sees the venvs as up to date
    for venv in (".venv", ".venv-sam"):
        (target / venv).symlink_to(ROOT / venv)
    return target


def _without_aws(environment: dict[str, str]) -> dict[str, str]:
    kept = {name: value for name, value in environment.items() if not name.startswith("AWS_")}
    # No credentials anywhere, and no instance-metadata lookup (that would leave this machine).
    return {
        **kept,
        "AWS_CONFIG_FILE": os.devnull,
        "AWS_SHARED_CREDENTIALS_FILE": os.devnull,
        "AWS_EC2_METADATA_DISABLED": "true",
    }


@pytest.fixture(scope="module")
def repository(tmp_path_factory) -> Path:
    return _copy_of_the_repository(tmp_path_factory.mktemp("clone") / "repository")


@pytest.fixture(scope="module")
def moto_endpoint():
    moto = services.start_moto()
    # "localhost": moto reads a template's S3 URL path-style only for that host name.
    yield f"http://localhost:{moto.port}"
    moto.stop()


def _make_deploy(repository: Path, environment: dict[str, str], *variables: str) -> subprocess.CompletedProcess:
    return _make("deploy", repository, environment, *variables)


def _make(target: str, repository: Path, environment: dict[str, str], *variables: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        ["make", "--no-print-directory", target, *variables],
        cwd=repository,
        env=environment,
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=1200,
    )


def test_make_deploy_without_credentials_fails_at_once_before_building_in_one_line(repository):
    started = time.monotonic()
    result = _make_deploy(repository, _without_aws(HOST_ENVIRONMENT), "REGION=eu-central-1", "APP_CODE=vendor.app")
    assert result.returncode != 0 and time.monotonic() - started < 30
    lines = [line for line in result.stderr.splitlines() if line.startswith("make deploy:")]
    assert len(lines) == 1 and "no AWS credentials" in lines[0], result.stderr[-2000:]
    assert "Traceback" not in result.stderr + result.stdout
    assert not (repository / ".aws-sam").exists()  # nothing was built


def test_make_deploy_twice_against_moto_creates_then_updates_the_stack_and_the_second_asks_nothing(
    repository, moto_endpoint
):
    environment = {
        **_without_aws(HOST_ENVIRONMENT),
        "AWS_ENDPOINT_URL": moto_endpoint,
        "AWS_ACCESS_KEY_ID": "rehearsal",
        "AWS_SECRET_ACCESS_KEY": "rehearsal",
        "SAM_CLI_TELEMETRY": "0",
    }
    boto3.client(
        "s3", endpoint_url=moto_endpoint, region_name=REGION, aws_access_key_id="x", aws_secret_access_key="x"
    ).create_bucket(Bucket="rehearsal-artifacts", CreateBucketConfiguration={"LocationConstraint": REGION})

    first = _make_deploy(
        repository, environment, f"REGION={REGION}", "APP_CODE=vendor.app", "ARTIFACTS_BUCKET=rehearsal-artifacts"
    )
    output = first.stdout + first.stderr
    assert first.returncode == 0, output[-4000:]
    assert "Traceback" not in output and "Saved in samconfig.toml" in output
    saved = tomllib.loads((repository / "samconfig.toml").read_text())["default"]["deploy"]["parameters"]
    assert saved["region"] == REGION and saved["s3_bucket"] == "rehearsal-artifacts"
    assert "Bitrix24AppCode=vendor.app" in saved["parameter_overrides"]
    cloudformation = boto3.client(
        "cloudformation",
        endpoint_url=moto_endpoint,
        region_name=REGION,
        aws_access_key_id="x",
        aws_secret_access_key="x",
    )
    assert (
        cloudformation.describe_stacks(StackName="bitrix24-billing-webhooks")["Stacks"][0]["StackStatus"]
        == "CREATE_COMPLETE"
    )
    assert "reports no outputs" in output  # moto runs no SAM transform: a sentence, never a KeyError

    second = _make_deploy(repository, environment)  # no variables, input closed: nothing to ask
    output = second.stdout + second.stderr
    assert second.returncode == 0, output[-4000:]
    assert "Traceback" not in output and "Saved in" not in output and "?" not in output.split("Initiating")[0][-200:]
    stack = cloudformation.describe_stacks(StackName="bitrix24-billing-webhooks")["Stacks"][0]
    assert stack["StackStatus"] in ("UPDATE_COMPLETE", "CREATE_COMPLETE")  # updated, or nothing to change
    assert "bitrix24-billing-webhooks" in output


def _rehearsal_environment(moto_endpoint: str) -> dict[str, str]:
    return {
        **_without_aws(HOST_ENVIRONMENT),
        "AWS_ENDPOINT_URL": moto_endpoint,
        "AWS_ACCESS_KEY_ID": "rehearsal",
        "AWS_SECRET_ACCESS_KEY": "rehearsal",
        "SAM_CLI_TELEMETRY": "0",
    }


@pytest.fixture
def own_moto():
    """A moto of this test's own: a stack deleted in a moto that updated it before leaves behind
    what a new stack then collides with (moto's, not AWS's, bookkeeping)."""
    moto = services.start_moto()
    yield f"http://localhost:{moto.port}"
    moto.stop()


def test_sam_delete_keeps_the_tables_and_the_token_key_and_a_redeployed_stack_reattaches_them(repository, own_moto):
    """docs/operations.md's teardown and reattach, rehearsed: data written before `sam delete` is
    read after a redeploy that takes over the kept TokenStoreKey and `make reattach`."""
    moto_endpoint = own_moto
    clients = {
        name: boto3.client(
            name, endpoint_url=moto_endpoint, region_name=REGION, aws_access_key_id="x", aws_secret_access_key="x"
        )
        for name in ("cloudformation", "dynamodb", "kms", "s3")
    }
    environment = _rehearsal_environment(moto_endpoint)
    stack_name = "bitrix24-teardown-rehearsal"  # deployed, deleted, deployed again

    def resources() -> dict[str, str]:
        pages = clients["cloudformation"].get_paginator("list_stack_resources").paginate(StackName=stack_name)
        return {
            r["LogicalResourceId"]: r["PhysicalResourceId"] for page in pages for r in page["StackResourceSummaries"]
        }

    def entitled(table: str, member_id: str) -> dict:
        return clients["dynamodb"].get_item(TableName=table, Key={"member_id": {"S": member_id}})["Item"]["entitled"]

    try:
        clients["s3"].create_bucket(
            Bucket="rehearsal-artifacts", CreateBucketConfiguration={"LocationConstraint": REGION}
        )
    except clients["s3"].exceptions.BucketAlreadyOwnedByYou:
        pass
    deploy = (
        f"REGION={REGION}",
        "APP_CODE=vendor.app",
        "ARTIFACTS_BUCKET=rehearsal-artifacts",
        f"STACK_NAME={stack_name}",
    )
    deployed = _make_deploy(repository, environment, *deploy)
    assert deployed.returncode == 0, (deployed.stdout + deployed.stderr)[-3000:]
    before = resources()
    member_id, context = "a223c6b3710f85df22e9377d6c4f7553", {"purpose": "portal-tokens"}
    newer = "b" * 32  # also written by the new stack before the reattach: its own answer stands
    context["member_id"] = member_id
    sealed = clients["kms"].encrypt(
        KeyId=before["TokenStoreKey"], Plaintext=b"the kept pair", EncryptionContext=context
    )
    for member, value in ((member_id, True), (newer, False)):
        clients["dynamodb"].put_item(
            TableName=before["EntitlementsTable"], Item={"member_id": {"S": member}, "entitled": {"BOOL": value}}
        )
    clients["dynamodb"].put_item(
        TableName=before["PortalTokensTable"],
        Item={"member_id": {"S": member_id}, "sealed": {"B": sealed["CiphertextBlob"]}},
    )

    deleted = subprocess.run(
        [
            str(ROOT / ".venv-sam" / "bin" / "sam"),
            "delete",
            "--stack-name",
            stack_name,
            "--region",
            REGION,
            "--no-prompts",
        ],
        cwd=repository,
        env=environment,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert deleted.returncode == 0, (deleted.stdout + deleted.stderr)[-3000:]
    tables = clients["dynamodb"].list_tables()["TableNames"]
    for name in (
        "NotificationsTable",
        "InstallationsTable",
        "AccountsTable",
        "EntitlementsTable",
        "PortalTokensTable",
        "QuarantineTable",
    ):
        assert before[name] in tables, name  # kept
    # moto cannot describe a key CloudFormation made (its policy is kept as a dict): listed, then
    kept_key = next(key for key in clients["kms"].list_keys()["Keys"] if key["KeyId"] == before["TokenStoreKey"])
    kept_key["Arn"] = kept_key["KeyArn"]

    redeployed = _make_deploy(repository, environment, *deploy, f"KEPT_TOKEN_STORE_KEY={kept_key['Arn']}")
    assert redeployed.returncode == 0, (redeployed.stdout + redeployed.stderr)[-3000:]
    after = resources()
    assert after["EntitlementsTable"] != before["EntitlementsTable"]  # a new stack makes new tables
    assert "TokenStoreKey" not in after  # ... but no key: it seals under the kept one
    aliases = {alias["AliasName"]: alias.get("TargetKeyId") for alias in clients["kms"].list_aliases()["Aliases"]}
    assert aliases[f"alias/{stack_name}-token-store"] == kept_key["KeyId"]
    clients["dynamodb"].put_item(
        TableName=after["EntitlementsTable"], Item={"member_id": {"S": newer}, "entitled": {"BOOL": True}}
    )

    reattached = _make("reattach", repository, environment)
    assert reattached.returncode == 0, (reattached.stdout + reattached.stderr)[-3000:]
    assert (
        f"EntitlementsTable: 1 copied from {before['EntitlementsTable']}, 1 already there (kept)" in reattached.stdout
    )
    assert f"PortalTokensTable: 1 copied from {before['PortalTokensTable']}" in reattached.stdout
    assert entitled(after["EntitlementsTable"], member_id) == {"BOOL": True}  # the kept answer, read back
    assert entitled(after["EntitlementsTable"], newer) == {"BOOL": True}  # what the new stack wrote stands
    kept = clients["dynamodb"].get_item(TableName=after["PortalTokensTable"], Key={"member_id": {"S": member_id}})
    opened = clients["kms"].decrypt(
        CiphertextBlob=kept["Item"]["sealed"]["B"], EncryptionContext=context, KeyId=f"alias/{stack_name}-token-store"
    )
    assert opened["Plaintext"] == b"the kept pair"  # the stack's own key alias opens what was sealed before
    again = _make("reattach", repository, environment)
    assert again.returncode == 0 and "EntitlementsTable: 0 copied" in again.stdout, again.stdout + again.stderr


def test_make_clean_removes_what_make_made_in_the_copy_and_leaves_the_sources(repository):
    (repository / ".cache").mkdir(exist_ok=True)
    result = subprocess.run(
        ["make", "clean"], cwd=repository, env=HOST_ENVIRONMENT, capture_output=True, text=True, timeout=120
    )
    assert result.returncode == 0, result.stderr
    assert not any((repository / name).exists() for name in (".venv", ".venv-sam", ".aws-sam", ".cache"))
    assert (repository / "template.yaml").exists() and (ROOT / ".venv" / "bin" / "python").exists()
