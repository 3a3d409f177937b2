"""`make deploy`: deploy what `make build` built, then say what to paste where.

    .venv/bin/python -m tools.deploy check            before building: credentials and a region?
    .venv/bin/python -m tools.deploy deploy arm64     deploy the build, print the URLs and secrets

The first time it asks for the region (default: your AWS configuration's) and the template
parameters that have no default (your app's CODE, optional alert addresses), or takes them from
the make variables REGION, APP_CODE, ALERT_EMAIL, OPS_EMAIL (and ARTIFACTS_BUCKET, STACK_NAME, and
KEPT_TOKEN_STORE_KEY when a new stack takes over a deleted one's kept key: docs/operations.md),
and saves them in the repository's samconfig.toml; later runs ask nothing. samconfig.toml may
hold SAM CLI's own forms too (parameter_overrides as a string, a list or a table). The
`Architecture` it deploys is always the one `make build` built, checked before anything is sent.
A deploy over an existing stack updates it: every table is `Retain` with point-in-time recovery.
AWS_ENDPOINT_URL points both SAM CLI and boto3 at a stand-in (docs/operations.md: a rehearsal).
"""

import os
import shlex
import subprocess
import sys
import tomllib
from pathlib import Path
from typing import Any

from local import template
from tools import shipping

ROOT = Path(__file__).resolve().parents[1]
SAMCONFIG = ROOT / "samconfig.toml"
BUILD_DIR = ROOT / ".aws-sam" / "build"
SAM = ROOT / ".venv-sam" / "bin" / "sam"
DEFAULT_STACK_NAME = "bitrix24-billing-webhooks"
# What each secret holds: a JSON object, shown as the value to put.
SECRET_SHAPES = {
    "BillingWebhookSecret": '{"current": "<token the billing system sends>"}',
    "BillingSigningSecret": '{"current": "<HMAC key the billing system signs with>"}',
    "Bitrix24PortalSecret": '{"<member_id>": "<application_token>"}',
    "Bitrix24AppCredentials": '{"client_id": "<your app client_id>", "client_secret": "<its secret>"}',
}
# Asked the first time: (template parameter, make variable, question, required).
FIRST_TIME_PARAMETERS = (
    ("Bitrix24AppCode", "APP_CODE", "Your marketplace app's CODE, as app.info reports it (e.g. vendor.appname)", True),
    ("AlertEmail", "ALERT_EMAIL", "An address for unpaid-invoice and trial alerts (empty: none)", False),
    ("OpsEmail", "OPS_EMAIL", "An address for the operators' alarms (empty: none)", False),
)
HEADER = """# Deploy settings: `make deploy` asks for what is missing the first time and saves it here.
# The Architecture below is the one `make build` builds by default (a test keeps them in step):
# the layer's native wheels must match the functions' architecture.
"""


class Refused(Exception):
    """make deploy cannot go on: the message says why, and what to set, in one line."""


# --- samconfig.toml, in whatever form SAM CLI or we saved it ---


def load_config() -> dict[str, Any]:
    return tomllib.loads(SAMCONFIG.read_text()) if SAMCONFIG.exists() else {}


def deploy_settings(config: dict[str, Any] | None = None) -> dict[str, Any]:
    default = (config if config is not None else load_config()).get("default", {})
    return {**default.get("global", {}).get("parameters", {}), **default.get("deploy", {}).get("parameters", {})}


def parse_overrides(value: Any) -> dict[str, str]:
    """SAM's parameter_overrides: `Key=Value Key2="with spaces"`, a list of `Key=Value`, or a table."""
    if isinstance(value, dict):
        return {str(key): str(item) for key, item in value.items()}
    items = value if isinstance(value, list) else shlex.split(value or "")
    return dict(str(item).split("=", 1) for item in items if "=" in str(item))


def format_overrides(overrides: dict[str, str]) -> str:
    return " ".join(f"{key}={shlex.quote(value) if value else chr(34) * 2}" for key, value in overrides.items())


def _toml_value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return str(value)
    escaped = str(value).replace("\\", "\\\\").replace('"', '\\"')
    return f'"{escaped}"'


def save_config(config: dict[str, Any]) -> None:
    """samconfig.toml as SAM CLI reads it: `version`, then [env.command.parameters] tables."""
    lines = [HEADER.rstrip(), f"version = {_toml_value(config.get('version', 0.1))}"]
    for environment, commands in config.items():
        if not isinstance(commands, dict):
            continue
        for command, section in commands.items():
            values = section.get("parameters", {}) if isinstance(section, dict) else {}
            lines += ["", f"[{environment}.{command}.parameters]"]
            for key, value in values.items():
                value = format_overrides(parse_overrides(value)) if key == "parameter_overrides" else value
                lines.append(f"{key} = {_toml_value(value)}")
    SAMCONFIG.write_text("\n".join(lines) + "\n")


# --- the questions ---


def ask(question: str, variable: str, default: str = "", required: bool = False) -> str:
    """The make variable if given; else the answer typed (default offered); a required one left
    unanswered on a closed input is Refused, naming the variable."""
    if os.environ.get(variable):
        return os.environ[variable].strip()
    while True:
        try:
            answer = input(f"{question}{f' [{default}]' if default else ''}: ").strip() or default
        except EOFError:
            if required and not default:
                raise Refused(
                    f"no answer to '{question}' (standard input is closed): set it with make deploy {variable}=…"
                ) from None
            print()
            return default
        if answer or not required:
            return answer
        print("  (required)")


def _aws_region() -> str:
    import boto3

    return boto3.session.Session().region_name or ""


def first_time(settings: dict[str, Any]) -> dict[str, Any]:
    """The answers a first deploy needs, merged into what samconfig.toml already held."""
    overrides = parse_overrides(settings.get("parameter_overrides", ""))
    answers: dict[str, Any] = {"region": ask("AWS region", "REGION", _aws_region(), True)}
    for name, variable, question, required in FIRST_TIME_PARAMETERS:
        overrides[name] = ask(question, variable, overrides.get(name, ""), required)
    answers["parameter_overrides"] = overrides
    return answers


def check() -> None:
    """Before anything is built: credentials, and a region from somewhere."""
    import boto3

    if boto3.session.Session().get_credentials() is None:
        raise Refused(
            "no AWS credentials: configure them (aws configure, AWS_PROFILE or AWS_ACCESS_KEY_ID) before make deploy"
        )
    if not (os.environ.get("REGION") or deploy_settings().get("region") or _aws_region()):
        raise Refused("no AWS region: give one with make deploy REGION=…, or set it in your AWS configuration")
    settle(load_config())  # the first time's questions, and what AWS would refuse, before any build


def _refused_settings(settings: dict[str, Any]) -> str | None:
    """What AWS (or the template) would refuse of the settings, after a whole build: said now."""
    import re

    code = parse_overrides(settings.get("parameter_overrides", "")).get("Bitrix24AppCode", "")
    pattern = template.load()["Parameters"]["Bitrix24AppCode"]["AllowedPattern"]
    if not re.fullmatch(pattern, str(code)):
        return (
            f"APP_CODE {str(code)!r} is not an app CODE the template takes (letters, digits, '.', '_', '-'): "
            "give it with make deploy APP_CODE=…"
        )
    if kept_key := parse_overrides(settings.get("parameter_overrides", "")).get("KeptTokenStoreKeyArn"):
        if refused := _refused_kept_key(kept_key, settings["region"], settings.get("stack_name", DEFAULT_STACK_NAME)):
            return refused
    bucket = settings.get("s3_bucket")
    if bucket:
        import boto3
        from botocore.exceptions import BotoCoreError, ClientError

        try:
            boto3.client("s3", region_name=settings["region"]).head_bucket(Bucket=bucket)
        except (ClientError, BotoCoreError):
            return (
                f"the artifacts bucket {bucket!r} does not exist in {settings['region']} (or is not yours): create it, "
                "or give another with make deploy ARTIFACTS_BUCKET=… (nothing was saved or built)"
            )
    return None


def _refused_kept_key(arn: str, region: str, stack_name: str) -> str | None:
    """A kept TokenStoreKey the new stack cannot use: not a key ARN, not in this region, or not enabled
    (pending deletion: cancel that first); or a live stack's own key it would trade for another,
    leaving every token it sealed unopenable."""
    import re

    import boto3
    from botocore.exceptions import BotoCoreError, ClientError

    pattern = template.load()["Parameters"]["KeptTokenStoreKeyArn"]["AllowedPattern"]
    if not re.fullmatch(pattern, arn) or arn.split(":")[3] != region:
        return f"KEPT_TOKEN_STORE_KEY {arn!r} is not a KMS key ARN in {region}: give the kept TokenStoreKey's ARN"
    if (own := _stack_token_store_key(stack_name, region)) and not arn.endswith(f"/{own}"):
        return (
            f"stack {stack_name} is deployed with a TokenStoreKey of its own ({own}), which sealed its tokens: "
            "KEPT_TOKEN_STORE_KEY is for a stack deployed again after sam delete (nothing was saved or built)"
        )
    try:
        state = boto3.client("kms", region_name=region).describe_key(KeyId=arn)["KeyMetadata"]["KeyState"]
    except ClientError as error:
        if error.response.get("ResponseMetadata", {}).get("HTTPStatusCode", 400) >= 500:
            return None  # KMS cannot tell now (moto cannot describe a key CloudFormation made): the deploy will
        return f"KEPT_TOKEN_STORE_KEY {arn!r} cannot be read in {region}: {error} (nothing was saved or built)"
    except BotoCoreError as error:
        return f"KEPT_TOKEN_STORE_KEY {arn!r} cannot be read in {region}: {error} (nothing was saved or built)"
    if state != "Enabled":
        return (
            f"KEPT_TOKEN_STORE_KEY {arn!r} is {state}: cancel its deletion and enable it "
            "(aws kms cancel-key-deletion, enable-key) before deploying with it (nothing was saved or built)"
        )
    return None


def stack_resources(cloudformation: Any, stack_name: str) -> dict[str, str]:
    """Each resource of the stack: its logical id, its physical id (ClientError if no such stack)."""
    pages = cloudformation.get_paginator("list_stack_resources").paginate(StackName=stack_name)
    return {
        item["LogicalResourceId"]: item.get("PhysicalResourceId", "")
        for page in pages
        for item in page["StackResourceSummaries"]
    }


def _stack_token_store_key(stack_name: str, region: str) -> str | None:
    """The id of the TokenStoreKey the deployed stack made, if it stands and made one."""
    import boto3
    from botocore.exceptions import BotoCoreError, ClientError

    try:
        return stack_resources(boto3.client("cloudformation", region_name=region), stack_name).get("TokenStoreKey")
    except (ClientError, BotoCoreError):  # no such stack (deleted): nothing to trade
        return None


# --- the deploy ---


def deploy_command(settings: dict[str, Any], architecture: str) -> list[str]:
    overrides = parse_overrides(settings.get("parameter_overrides", ""))
    overrides["Architecture"] = architecture  # what was built, whatever was saved before
    command = [
        str(SAM),
        "deploy",
        "--template-file",
        str(BUILD_DIR / "template.yaml"),
        "--config-file",
        str(SAMCONFIG),
        "--stack-name",
        settings["stack_name"],
        "--region",
        settings["region"],
        "--capabilities",
        *str(settings.get("capabilities", "CAPABILITY_IAM")).split(),
        "--no-confirm-changeset",
        "--no-fail-on-empty-changeset",
        "--parameter-overrides",
        format_overrides(overrides),
    ]
    if settings.get("s3_bucket"):  # your own bucket (also what an AWS stand-in needs)
        command += [
            "--s3-bucket",
            settings["s3_bucket"],
            "--s3-prefix",
            settings.get("s3_prefix", settings["stack_name"]),
        ]
    else:
        command += ["--resolve-s3", "--s3-prefix", settings.get("s3_prefix", settings["stack_name"])]
    return command


def settle(config: dict[str, Any]) -> dict[str, Any]:
    """The deploy settings, asking (or reading the make variables) the first time, saved."""
    settings = deploy_settings(config)
    default = config.setdefault("default", {})
    deploy = default.setdefault("deploy", {}).setdefault("parameters", {})
    global_ = default.setdefault("global", {}).setdefault("parameters", {})
    changed = False
    if "region" not in settings:
        answers = first_time(settings)
        deploy["region"] = answers["region"]
        deploy["parameter_overrides"] = answers["parameter_overrides"]
        changed = True
    kept_key = os.environ.get("KEPT_TOKEN_STORE_KEY", "").strip()  # reattaching (docs/operations.md)
    overrides = parse_overrides(deploy.get("parameter_overrides", ""))
    if kept_key and overrides.get("KeptTokenStoreKeyArn") != kept_key:
        deploy["parameter_overrides"] = {**overrides, "KeptTokenStoreKeyArn": kept_key}
        changed = True
    for variable, key, section in (
        ("STACK_NAME", "stack_name", global_),
        ("ARTIFACTS_BUCKET", "s3_bucket", deploy),
        ("REGION", "region", deploy),
    ):
        if os.environ.get(variable) and section.get(key) != os.environ[variable]:
            section[key], changed = os.environ[variable], True
    global_.setdefault("stack_name", DEFAULT_STACK_NAME)
    if refused := _refused_settings(deploy_settings(config)):  # never saved: the next run asks again
        raise Refused(refused)
    if changed:
        save_config(config)
        print(f"Saved in {SAMCONFIG.name}: later runs ask nothing.")
    return deploy_settings(config)


def _outputs(stack_name: str, region: str) -> tuple[str, dict[str, dict[str, str]]]:
    import boto3

    stack = boto3.client("cloudformation", region_name=region).describe_stacks(StackName=stack_name)["Stacks"][0]
    return stack["StackStatus"], {output["OutputKey"]: output for output in stack.get("Outputs", [])}


def print_endpoints(stack_name: str, region: str) -> None:
    status, outputs = _outputs(stack_name, region)
    print(f"\nStack {stack_name} ({region}) is {status}.")
    if not outputs:
        print(
            "It reports no outputs (an AWS stand-in such as moto does not run the SAM transform, so it has no "
            "API and no URLs); on AWS this prints the URLs to paste. `aws cloudformation describe-stacks "
            f"--stack-name {stack_name}` shows them later."
        )
        return

    def value(key: str) -> str:
        return outputs[key]["OutputValue"] if key in outputs else f"(no output {key})"

    print("\nYour app asks here whether a portal may use it now (AWS_IAM-signed GET; docs/integration.md):")
    print(f"  {value('EntitlementsApiUrl')}/<member_id>")
    print(f"  allow execute-api:Invoke on {value('EntitlementsRouteArn')}")
    print("\nPaste into your app's settings (installation event handler); each install binds the rest itself:")
    print(f"  {value('AppInstallUrl')}")
    print("\nWebhook URLs (the billing system's 8 /billing/… take the token below):")
    for route in template.routes():
        print(f"  {value(route.function.removesuffix('Function') + 'Url')}")
    print("\nRead API (AWS_IAM-signed GET; the billing-webhooks CLI reads it too):")
    print(f"  {value('AccountsApiUrl')}")
    print("\nOperations dashboard (deliveries, quarantine, licence checks, entitlements, events, alarms):")
    print(f"  {value('OperationsDashboardUrl')}")
    print("\nEvents for your systems (docs/events.md):")
    print(f"  bus    {value('BillingEventsBusName')}")
    print(f"  queue  {value('EntitlementChangedQueueUrl')}   every EntitlementChanged")
    print("\nKept if the stack is deleted: the six tables and the key sealing portal tokens (note its ARN;")
    print("docs/operations.md, Reattaching: make deploy KEPT_TOKEN_STORE_KEY=<it>, then make reattach):")
    print(f"  {value('TokenStoreKeyArn')}")
    print("\nRescue queue (deliveries parked while storage failed; ReplayFunction runs them):")
    print(f"  {value('RescueQueueUrl')}")
    print("\nSecrets (read one with the first command, replace it with the second):")
    for secret, shape in SECRET_SHAPES.items():
        arn = value(f"{secret}Arn")
        console = outputs.get(f"{secret}Console", {})
        print(
            f"  {console.get('Description', secret).removeprefix('Console page of ')}:\n"
            f"    {console.get('OutputValue', '')}"
        )
        print(
            f"    aws secretsmanager get-secret-value --region {region} --secret-id {arn} "
            "--query SecretString --output text"
        )
        print(f"    aws secretsmanager put-secret-value --region {region} --secret-id {arn} --secret-string '{shape}'")


def main(argv: list[str]) -> int:
    try:
        if argv[:1] == ["check"]:
            check()
            return 0
        if len(argv) != 2 or argv[0] != "deploy" or argv[1] not in shipping.ELF_MACHINES:
            raise Refused(f"usage: python -m tools.deploy check | deploy {{{','.join(sorted(shipping.ELF_MACHINES))}}}")
        architecture = argv[1]
        shipping.check_architecture(BUILD_DIR, architecture)  # the build `make build` just made
        settings = settle(load_config())
        environment = {**os.environ, "SAM_CLI_TELEMETRY": "0"}
        if subprocess.run(deploy_command(settings, architecture), cwd=ROOT, env=environment).returncode != 0:
            raise Refused("sam deploy failed (its messages are above); nothing else was changed")
        print_endpoints(settings["stack_name"], settings["region"])
    except Refused as refusal:
        print(f"make deploy: {refusal}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
