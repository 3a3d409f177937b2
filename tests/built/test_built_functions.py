"""`sam build` (x86_64: this machine cannot load arm64 wheels), then each built handler answers
its sample event on Python 3.13 with the layer from the build output, as Lambda would load it."""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from local import template
from local.template import ROOT
from tests.conftest import HOST_ENVIRONMENT
from tools import shipping

pytestmark = pytest.mark.slow
SAM = os.environ.get("SAM_CLI", str(ROOT / ".venv-sam" / "bin" / "sam"))


@pytest.fixture(scope="module")
def build_dir(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("sam-build")
    # make test puts its Python 3.13's folder first on PATH: sam build finds the runtime there.
    env = {**HOST_ENVIRONMENT, "AWS_DEFAULT_REGION": "us-east-1", "SAM_CLI_TELEMETRY": "0"}
    result = subprocess.run(
        [SAM, "build", "--parameter-overrides", "Architecture=x86_64", "--build-dir", str(out)],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    shipping.compile_build(out)  # as `make build` ships it
    return out


@pytest.fixture(scope="module")
def runtime_boto3() -> Path:
    return shipping.lambda_runtime_boto3(HOST_ENVIRONMENT)


def _invoke_built(build_dir: Path, runtime: Path, function: str, event_file: Path, environment: dict) -> dict:
    pythonpath = shipping.lambda_pythonpath(build_dir, function, runtime)
    env = {"PATH": HOST_ENVIRONMENT["PATH"], **environment, "PYTHONPATH": pythonpath}
    result = subprocess.run(
        [sys.executable, "-S", "-B", str(Path(__file__).with_name("invoke_built.py")), function, str(event_file)],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    return json.loads(result.stdout.strip().splitlines()[-1])


def test_the_built_layer_carries_pydantic_and_powertools_but_not_boto3(build_dir):
    packages = {p.name for p in (build_dir / "SharedLayer" / "python").iterdir()}
    assert {"billing_webhooks", "pydantic", "pydantic_core", "aws_lambda_powertools"} <= packages
    assert "boto3" not in packages and "botocore" not in packages
    assert any(
        p.name.endswith("x86_64-linux-gnu.so")
        for p in (build_dir / "SharedLayer" / "python" / "pydantic_core").iterdir()
    )


def test_every_shipped_module_carries_bytecode_that_stays_valid_after_unzipping(build_dir):
    import importlib.util

    functions = {route.function for route in template.routes() + template.read_routes()} | {"AccountProjectorFunction"}
    for artifact in [build_dir / "SharedLayer", *(build_dir / function for function in sorted(functions))]:
        sources = list(artifact.rglob("*.py"))
        assert sources, artifact
        for source in sources:
            cached = Path(importlib.util.cache_from_source(str(source)))
            assert cached.exists(), source
            flags = int.from_bytes(cached.read_bytes()[4:8], "little")
            assert flags == 0b01, f"{cached} is not an unchecked-hash pyc"  # hash-based, not checked


@pytest.mark.parametrize("route", template.routes(), ids=lambda r: r.function)
def test_each_built_function_answers_its_sample_event(build_dir, runtime_boto3, stack, table, route):
    event_file = ROOT / "events" / f"{route.code_dir.name}.json"
    first = _invoke_built(build_dir, runtime_boto3, route.function, event_file, stack.environment)
    assert first["app"].startswith(str(build_dir / route.function))
    assert first["pydantic"].startswith(str(build_dir / "SharedLayer" / "python"))
    assert first["response"]["statusCode"] == 200, first["response"]
    assert json.loads(first["response"]["body"])["status"] == "stored"
    again = _invoke_built(build_dir, runtime_boto3, route.function, event_file, stack.environment)
    assert json.loads(again["response"]["body"])["status"] == "duplicate"
    assert len(table.items()) == 1


def test_the_built_projector_projects_its_sample_stream_event_and_the_built_reader_answers_it(
    build_dir, runtime_boto3, stack, table
):
    projected = _invoke_built(
        build_dir,
        runtime_boto3,
        "AccountProjectorFunction",
        ROOT / "events" / "account_projector.json",
        stack.environment,
    )
    assert projected["response"] == {"batchItemFailures": []}
    assert projected["app"].startswith(str(build_dir / "AccountProjectorFunction"))
    read = _invoke_built(
        build_dir, runtime_boto3, "AccountsApiFunction", ROOT / "events" / "accounts_api.json", stack.environment
    )
    assert read["response"]["statusCode"] == 200, read["response"]
    view = json.loads(read["response"]["body"])
    assert view["account_id"] == 504 and any(invoice["status"] == "unpaid" for invoice in view["invoices"])
