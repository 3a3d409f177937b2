"""What `make build` adds to `sam build`, and what tests and the benchmark load as Lambda would.

Lambda's /opt and /var/task are read-only: a module without shipped bytecode is compiled from
source at every cold start. So the build output is compiled with the runtime's Python (3.13) in
unchecked-hash mode: the .pyc files stay valid whatever mtimes the zip and its extraction give
the sources.

    .venv/bin/python -m local.shipping .aws-sam/build
"""

import compileall
import py_compile
import subprocess
import sys
from pathlib import Path

from local.template import ROOT

RUNTIME_BOTO3 = ROOT / ".cache" / "lambda-runtime-boto3"


def compile_build(build_dir: Path) -> None:
    for artifact in sorted(path for path in build_dir.iterdir() if path.is_dir()):
        # A layer's files land in /opt (python/ inside it); a function's in /var/task.
        target = "/opt" if (artifact / "python").is_dir() else "/var/task"
        ok = compileall.compile_dir(
            artifact, quiet=1, stripdir=str(artifact), prependdir=target, workers=0,
            invalidation_mode=py_compile.PycInvalidationMode.UNCHECKED_HASH,
        )
        if not ok:
            raise SystemExit(f"compiling {artifact} failed")


def lambda_runtime_boto3(environment: dict[str, str] | None = None) -> Path:
    """The Lambda runtime ships boto3 (the layer must not): the same version here, outside any
    venv, compiled as pip installs it."""
    import boto3

    marker = RUNTIME_BOTO3 / f".boto3-{boto3.__version__}"
    if not marker.exists():
        subprocess.run([sys.executable, "-m", "pip", "install", "--quiet", "--target", str(RUNTIME_BOTO3),
                        f"boto3=={boto3.__version__}"], check=True, timeout=600, env=environment)
        marker.touch()
    return RUNTIME_BOTO3


def lambda_pythonpath(build_dir: Path, function: str, runtime: Path) -> str:
    """/var/task, then /opt/python, then the runtime's own packages: Lambda's order."""
    return ":".join([str(build_dir / function), str(build_dir / "SharedLayer" / "python"), str(runtime)])


if __name__ == "__main__":
    compile_build(Path(sys.argv[1]))
