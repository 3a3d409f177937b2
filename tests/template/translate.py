"""Print template.yaml translated to plain CloudFormation, as SAM would deploy it.

Runs on the SAM CLI's own venv (aws-sam-translator pins its own pydantic):
    .venv-sam/bin/python tests/template/translate.py template.yaml Architecture=x86_64
"""

import json
import sys
from pathlib import Path

import boto3
from samcli.yamlhelper import yaml_parse
from samtranslator.parser.parser import Parser
from samtranslator.translator.translator import Translator


def main() -> None:
    template = yaml_parse(Path(sys.argv[1]).read_text())
    # As `sam validate` does: local code paths stand in as S3 locations (the key keeps the path).
    for resource in template["Resources"].values():
        for prop in ("CodeUri", "ContentUri"):
            path = resource.get("Properties", {}).get(prop)
            if isinstance(path, str) and not path.startswith("s3://"):
                resource["Properties"][prop] = f"s3://local-artifacts/{path}"
    parameters = dict(arg.split("=", 1) for arg in sys.argv[2:])
    parameters.setdefault("AWS::Region", "us-east-1")
    parameters.setdefault("AWS::AccountId", "123456789012")
    parameters.setdefault("AWS::Partition", "aws")
    translated = Translator(
        managed_policy_map={}, sam_parser=Parser(), boto_session=boto3.Session(region_name="us-east-1")
    ).translate(template, parameters)
    json.dump(translated, sys.stdout, indent=1, default=str)


if __name__ == "__main__":
    main()
