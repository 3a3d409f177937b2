"""One way to deploy, and it is right: what `make build` leaves behind is what `make deploy` ships,
read off the real build output."""

import json
import re
import subprocess
import tomllib

import pytest
import yaml

from local import template
from local.template import ROOT
from tests.conftest import HOST_ENVIRONMENT
from tools import deploy, shipping

pytestmark = pytest.mark.slow
SAM_PYTHON = ROOT / ".venv-sam" / "bin" / "python"
# SAM CLI's own check behind `sam deploy --guided`'s "… has no authentication. Is this okay?"
GUIDED_AUTH_CHECK = """
import json, sys
from samcli.commands.deploy.auth_utils import auth_per_resource
from samcli.lib.providers.sam_stack_provider import SamLocalStackProvider
stacks, _ = SamLocalStackProvider.get_stacks(sys.argv[1], parameter_overrides={"Bitrix24AppCode": "x"})
print(json.dumps(dict(auth_per_resource(stacks))))
"""


def _makefile_default_architecture() -> str:
    return re.search(r"^ARCH \?= (\S+)$", (ROOT / "Makefile").read_text(), re.M).group(1)


@pytest.fixture(scope="module")
def make_build() -> subprocess.CompletedProcess:
    """`make build` exactly as a user runs it, default architecture."""
    env = {**HOST_ENVIRONMENT, "AWS_DEFAULT_REGION": "us-east-1", "SAM_CLI_TELEMETRY": "0"}
    env.pop("ARCH", None)
    result = subprocess.run(["make", "build"], cwd=ROOT, env=env, capture_output=True, text=True, timeout=900)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    return result


@pytest.fixture(scope="module")
def built_template(make_build) -> dict:
    return yaml.load((ROOT / ".aws-sam" / "build" / "template.yaml").read_text(), Loader=template._CfnLoader)  # noqa: S506


def test_make_build_the_template_and_samconfig_agree_on_arm64_by_default(make_build):
    samconfig = tomllib.loads((ROOT / "samconfig.toml").read_text())["default"]
    saved = {
        section: deploy.parse_overrides(samconfig[section]["parameters"]["parameter_overrides"])["Architecture"]
        for section in ("build", "deploy")
    }
    assert _makefile_default_architecture() == template.load()["Parameters"]["Architecture"]["Default"] == "arm64"
    assert saved == {"build": "arm64", "deploy": "arm64"}
    assert "Architecture=arm64" in make_build.stdout
    assert "every native library is arm64" in make_build.stdout


def test_the_built_layer_holds_arm64_native_code_only(make_build):
    build = ROOT / ".aws-sam" / "build"
    assert list(build.glob("SharedLayer/python/pydantic_core/*aarch64*.so"))
    assert shipping.foreign_libraries(build, "arm64") == []


def test_the_guard_refuses_a_build_whose_wheels_do_not_match_the_architecture(make_build):
    result = subprocess.run(
        [str(ROOT / ".venv" / "bin" / "python"), "-m", "tools.shipping", str(ROOT / ".aws-sam" / "build"), "x86_64"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        env=HOST_ENVIRONMENT,
    )
    assert result.returncode != 0
    assert "x86_64 Lambda functions cannot load" in result.stderr and "_pydantic_core" in result.stderr


def test_outputs_give_the_full_url_of_every_webhook_route_and_each_secrets_console(built_template):
    outputs = built_template["Outputs"]
    for route in template.routes():
        url = outputs[route.function.removesuffix("Function") + "Url"]["Value"]["Fn::Sub"]
        assert url == "https://${HttpApi}.execute-api.${AWS::Region}.${AWS::URLSuffix}" + route.path
    assert "app's settings" in outputs["AppInstallUrl"]["Description"]
    for secret in deploy.SECRET_SHAPES:
        console = outputs[f"{secret}Console"]["Value"]["Fn::Sub"]
        assert console.startswith(
            "https://${AWS::Region}.console.aws.amazon.com/secretsmanager/secret?name=${" + secret
        )
        assert outputs[f"{secret}Arn"]["Value"] == {"Ref": secret}


def test_guided_deploy_asks_no_authentication_question_for_functions_that_authenticate_in_code(make_build):
    result = subprocess.run(
        [str(SAM_PYTHON), "-c", GUIDED_AUTH_CHECK, str(ROOT / ".aws-sam" / "build" / "template.yaml")],
        capture_output=True,
        text=True,
        env={**HOST_ENVIRONMENT, "AWS_DEFAULT_REGION": "us-east-1"},
    )
    assert result.returncode == 0, result.stderr[-2000:]
    functions = {route.function for route in template.routes() + template.read_routes()}
    assert json.loads(result.stdout) == dict.fromkeys(functions, True)  # the reads by AWS_IAM, the webhooks in code


def test_samconfig_in_any_form_sam_cli_saves_reads_the_same_and_is_saved_back_as_strings(tmp_path, monkeypatch):
    forms = [
        '"Architecture=arm64 Bitrix24AppCode=vendor.app AlertEmail=\\"\\""',
        '["Architecture=arm64", "Bitrix24AppCode=vendor.app", "AlertEmail="]',
        '{Architecture = "arm64", Bitrix24AppCode = "vendor.app", AlertEmail = ""}',
    ]
    monkeypatch.setattr(deploy, "SAMCONFIG", tmp_path / "samconfig.toml")
    for form in forms:
        (tmp_path / "samconfig.toml").write_text(
            f'version = 0.1\n[default.deploy.parameters]\nregion = "eu-central-1"\nparameter_overrides = {form}\n'
        )
        settings = deploy.deploy_settings()
        assert deploy.parse_overrides(settings["parameter_overrides"]) == {
            "Architecture": "arm64",
            "Bitrix24AppCode": "vendor.app",
            "AlertEmail": "",
        }, form
        deploy.save_config(deploy.load_config())
        again = deploy.deploy_settings()
        assert isinstance(again["parameter_overrides"], str)
        assert deploy.parse_overrides(again["parameter_overrides"])["Bitrix24AppCode"] == "vendor.app"


def test_the_deploy_command_deploys_the_built_architecture_with_our_samconfig_and_asks_nothing():
    settings = {
        "stack_name": "s",
        "region": "eu-central-1",
        "parameter_overrides": "Architecture=arm64 Bitrix24AppCode=a",
    }
    command = deploy.deploy_command(settings, "x86_64")
    assert command[command.index("--config-file") + 1] == str(ROOT / "samconfig.toml")
    assert command[command.index("--template-file") + 1] == str(ROOT / ".aws-sam" / "build" / "template.yaml")
    assert "--no-confirm-changeset" in command and "--resolve-s3" in command
    assert deploy.parse_overrides(command[command.index("--parameter-overrides") + 1]) == {
        "Architecture": "x86_64",
        "Bitrix24AppCode": "a",
    }
    own_bucket = deploy.deploy_command({**settings, "s3_bucket": "mine"}, "arm64")
    assert own_bucket[own_bucket.index("--s3-bucket") + 1] == "mine" and "--resolve-s3" not in own_bucket


def test_what_aws_would_refuse_after_a_build_is_refused_before_it_and_never_saved(tmp_path, monkeypatch):
    import boto3
    from botocore.stub import Stubber

    monkeypatch.setattr(deploy, "SAMCONFIG", tmp_path / "samconfig.toml")
    for name in (
        "REGION",
        "APP_CODE",
        "ARTIFACTS_BUCKET",
        "STACK_NAME",
        "ALERT_EMAIL",
        "OPS_EMAIL",
        "KEPT_TOKEN_STORE_KEY",
    ):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setattr("builtins.input", lambda prompt: (_ for _ in ()).throw(EOFError))
    monkeypatch.setenv("REGION", "eu-central-1")
    # An APP_CODE the template's pattern refuses (moto would take it; AWS would not).
    monkeypatch.setenv("APP_CODE", "vendor app!")
    with pytest.raises(deploy.Refused, match="APP_CODE 'vendor app!'"):
        deploy.settle(deploy.load_config())
    assert not (tmp_path / "samconfig.toml").exists()
    # A bucket that does not exist: said, and not saved for every later run to fail on.
    monkeypatch.setenv("APP_CODE", "vendor.app")
    monkeypatch.setenv("ARTIFACTS_BUCKET", "no-such-bucket")
    s3 = boto3.client("s3", region_name="eu-central-1", aws_access_key_id="x", aws_secret_access_key="x")
    stubber = Stubber(s3)
    stubber.add_client_error("head_bucket", "404", "Not Found", 404, expected_params={"Bucket": "no-such-bucket"})
    monkeypatch.setattr(boto3, "client", lambda *args, **kwargs: s3)
    with stubber, pytest.raises(deploy.Refused, match="artifacts bucket 'no-such-bucket' does not exist"):
        deploy.settle(deploy.load_config())
    assert not (tmp_path / "samconfig.toml").exists()
    # A kept key that is no key ARN of this region, or one scheduled for deletion: said before a build.
    monkeypatch.delenv("ARTIFACTS_BUCKET")
    monkeypatch.setenv("KEPT_TOKEN_STORE_KEY", "arn:aws:kms:us-east-1:123456789012:key/1234abcd-12ab")
    with pytest.raises(deploy.Refused, match="is not a KMS key ARN in eu-central-1"):
        deploy.settle(deploy.load_config())
    clients = {
        name: boto3.Session().client(name, region_name="eu-central-1", aws_access_key_id="x", aws_secret_access_key="x")
        for name in ("kms", "cloudformation")
    }
    monkeypatch.setattr(boto3, "client", lambda name, **kwargs: clients[name])
    arn = "arn:aws:kms:eu-central-1:123456789012:key/1234abcd-12ab"
    monkeypatch.setenv("KEPT_TOKEN_STORE_KEY", arn)
    # The stack stands with a key of its own: trading it would leave its tokens unopenable.
    own = {"LogicalResourceId": "TokenStoreKey", "PhysicalResourceId": "9999ffff-99ff"}
    standing = {
        "StackResourceSummaries": [
            {
                **own,
                "ResourceType": "AWS::KMS::Key",
                "LastUpdatedTimestamp": "2026-12-01",
                "ResourceStatus": "CREATE_COMPLETE",
            }
        ]
    }
    with Stubber(clients["cloudformation"]) as stack:
        stack.add_response("list_stack_resources", standing)
        with pytest.raises(deploy.Refused, match="a TokenStoreKey of its own"):
            deploy.settle(deploy.load_config())
    stubber = Stubber(clients["kms"])
    stubber.add_response("describe_key", {"KeyMetadata": {"KeyId": "1234abcd-12ab", "KeyState": "PendingDeletion"}})
    gone = Stubber(clients["cloudformation"])
    gone.add_client_error("list_stack_resources", "ValidationError", "Stack does not exist")
    gone.activate()
    with stubber, pytest.raises(deploy.Refused, match="is PendingDeletion: cancel its deletion"):
        deploy.settle(deploy.load_config())
    assert not (tmp_path / "samconfig.toml").exists()


def test_a_required_question_on_a_closed_input_names_the_variable_to_set(monkeypatch):
    def closed(prompt):
        raise EOFError

    monkeypatch.setattr("builtins.input", closed)
    monkeypatch.delenv("APP_CODE", raising=False)
    with pytest.raises(deploy.Refused, match="APP_CODE="):
        deploy.ask("Your app's CODE", "APP_CODE", required=True)
    assert deploy.ask("An address", "OPS_EMAIL") == ""  # optional: none
    monkeypatch.setenv("APP_CODE", "vendor.app")
    assert deploy.ask("Your app's CODE", "APP_CODE", required=True) == "vendor.app"


def test_after_deploying_it_prints_the_entitlement_url_first_every_webhook_url_and_each_secrets_commands(
    built_template, capsys, monkeypatch
):
    import boto3
    from botocore.stub import Stubber

    base = "https://abc123.execute-api.eu-central-1.amazonaws.com"
    outputs = []
    for key, output in built_template["Outputs"].items():
        value = output["Value"]
        if isinstance(value, dict) and "Fn::Sub" in value:
            value = value["Fn::Sub"].replace("https://${HttpApi}.execute-api.${AWS::Region}.${AWS::URLSuffix}", base)
        elif isinstance(value, dict):
            value = f"arn:aws:secretsmanager:eu-central-1:123456789012:secret:{key.removesuffix('Arn')}-x1"
        described = {"Description": output["Description"]} if output.get("Description") else {}
        outputs.append({"OutputKey": key, "OutputValue": value, **described})
    client = boto3.client(
        "cloudformation", region_name="eu-central-1", aws_access_key_id="x", aws_secret_access_key="x"
    )
    stubber = Stubber(client)
    stubber.add_response(
        "describe_stacks",
        {
            "Stacks": [
                {
                    "StackName": "bitrix24-billing-webhooks",
                    "StackStatus": "UPDATE_COMPLETE",
                    "Outputs": outputs,
                    "CreationTime": "2026-11-25T00:00:00Z",
                }
            ]
        },
        {"StackName": "bitrix24-billing-webhooks"},
    )
    monkeypatch.setattr(boto3, "client", lambda *args, **kwargs: client)
    with stubber:
        deploy.print_endpoints("bitrix24-billing-webhooks", "eu-central-1")
    printed = capsys.readouterr().out
    urls = [line.strip() for line in printed.splitlines() if line.strip().startswith("https://")]
    assert urls[:2] == [f"{base}/entitlements/<member_id>", f"{base}/bitrix24/app-install"]
    for route in template.routes():
        assert f"{base}{route.path}" in printed
    for secret in deploy.SECRET_SHAPES:
        assert f"--secret-id arn:aws:secretsmanager:eu-central-1:123456789012:secret:{secret}-x1" in printed
    assert printed.count("get-secret-value") == printed.count("put-secret-value") == len(deploy.SECRET_SHAPES)
    webhooks = printed.split("Webhook URLs")[1].split("\n\n")[0].splitlines()[1:]
    assert sorted(line.strip() for line in webhooks) == sorted(f"{base}{route.path}" for route in template.routes())
    assert "Read API" in printed and "Rescue queue" in printed
    # What the README tells a vendor to use: the entitlement answer and the events, each named.
    assert f"{base}/entitlements/<member_id>" in printed and "(no output" not in printed
    for key in ("BillingEventsBusName", "EntitlementChangedQueueUrl", "EntitlementsRouteArn", "OperationsDashboardUrl"):
        assert next(output["OutputValue"] for output in outputs if output["OutputKey"] == key) in printed
