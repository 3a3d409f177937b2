"""`make deploy`: deploy what `make build` built, then say what to paste where.

The first time it asks for the region and the template parameters that have no default (your
app's CODE, optional alert addresses) and saves them in samconfig.toml (`sam deploy --save-params`);
later runs ask nothing. The `Architecture` it deploys is always the one `make build` built (ARCH),
and the build is checked for it before anything is sent.

    .venv/bin/python -m tools.deploy arm64
"""

import argparse
import os
import shlex
import subprocess
import sys
import tomllib
from pathlib import Path

from tools import shipping

ROOT = Path(__file__).resolve().parents[1]
SAMCONFIG = ROOT / "samconfig.toml"
BUILD_DIR = ROOT / ".aws-sam" / "build"
SAM = ROOT / ".venv-sam" / "bin" / "sam"
# What each secret holds: a JSON object, shown as the value to put.
SECRET_SHAPES = {
    "BillingWebhookSecret": '{"current": "<token the billing system sends>"}',
    "BillingSigningSecret": '{"current": "<HMAC key the billing system signs with>"}',
    "Bitrix24PortalSecret": '{"<member_id>": "<application_token>"}',
    "Bitrix24AppCredentials": '{"client_id": "<your app client_id>", "client_secret": "<its secret>"}',
}
# Asked the first time: (parameter, question, required).
FIRST_TIME_PARAMETERS = (
    ("Bitrix24AppCode", "Your marketplace app's CODE, as app.info reports it (e.g. vendor.appname)", True),
    ("AlertEmail", "An address for unpaid-invoice and trial alerts (empty: none)", False),
    ("OpsEmail", "An address for the operators' alarms (empty: none)", False),
)


def deploy_settings() -> dict:
    config = tomllib.loads(SAMCONFIG.read_text())["default"]
    return {**config.get("global", {}).get("parameters", {}), **config.get("deploy", {}).get("parameters", {})}


def parse_overrides(text: str) -> dict[str, str]:
    """SAM's `Key=Value Key2="value with spaces"` form."""
    return dict(item.split("=", 1) for item in shlex.split(text or ""))


def format_overrides(overrides: dict[str, str]) -> str:
    return " ".join(f"{key}={shlex.quote(value) if value else chr(34) * 2}" for key, value in overrides.items())


def ask(question: str, default: str = "", required: bool = False) -> str:
    while True:
        answer = input(f"{question}{f' [{default}]' if default else ''}: ").strip() or default
        if answer or not required:
            return answer
        print("  (required)")


def deploy_command(settings: dict, architecture: str, first_time: bool) -> list[str]:
    overrides = parse_overrides(settings.get("parameter_overrides", ""))
    overrides["Architecture"] = architecture  # what was built, whatever was saved before
    command = [str(SAM), "deploy", "--template-file", str(BUILD_DIR / "template.yaml")]
    if first_time:
        region = ask("AWS region", os.environ.get("AWS_REGION") or os.environ.get("AWS_DEFAULT_REGION") or "", True)
        for name, question, required in FIRST_TIME_PARAMETERS:
            overrides[name] = ask(question, overrides.get(name, ""), required)
        command += ["--region", region, "--save-params"]
    return command + ["--parameter-overrides", format_overrides(overrides)]


def print_endpoints(stack_name: str, region: str) -> None:
    import boto3

    stack = boto3.client("cloudformation", region_name=region).describe_stacks(StackName=stack_name)["Stacks"][0]
    outputs = {output["OutputKey"]: output for output in stack.get("Outputs", [])}
    print(f"\nStack {stack_name} ({region}) is {stack['StackStatus']}.\n")
    print("Paste into your app's settings (installation event handler); each install binds the rest itself:")
    print(f"  {outputs['AppInstallUrl']['OutputValue']}\n")
    print("Webhook URLs:")
    for key, output in outputs.items():
        if key.endswith("Url") and key != "ApiUrl":
            print(f"  {output['OutputValue']}")
    print("\nSecrets (read one with the first command, replace it with the second):")
    for secret, shape in SECRET_SHAPES.items():
        arn = outputs[f"{secret}Arn"]["OutputValue"]
        console = outputs[f"{secret}Console"]
        print(f"  {console['Description'].removeprefix('Console page of ')}:\n    {console['OutputValue']}")
        print(f"    aws secretsmanager get-secret-value --region {region} --secret-id {arn} "
              "--query SecretString --output text")
        print(f"    aws secretsmanager put-secret-value --region {region} --secret-id {arn} --secret-string '{shape}'")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("architecture", choices=sorted(shipping.ELF_MACHINES))
    architecture = parser.parse_args().architecture
    shipping.check_architecture(BUILD_DIR, architecture)  # the build `make build` just made
    settings = deploy_settings()
    first_time = "region" not in settings
    command = deploy_command(settings, architecture, first_time)
    environment = {**os.environ, "SAM_CLI_TELEMETRY": "0"}
    if subprocess.run(command, cwd=ROOT, env=environment).returncode != 0:
        sys.exit(1)
    settings = deploy_settings()
    print_endpoints(settings["stack_name"], settings.get("region") or environment.get("AWS_DEFAULT_REGION", ""))


if __name__ == "__main__":
    main()
