"""What `make build` adds to `sam build`, and what tests and the benchmark load as Lambda would.

Lambda's /opt and /var/task are read-only: a module without shipped bytecode is compiled from
source at every cold start. So the build output is compiled with the runtime's Python (3.13) in
unchecked-hash mode: the .pyc files stay valid whatever mtimes the zip and its extraction give
the sources.

And the build is refused when a native library in it is for another machine than the functions'
`Architecture`: CloudFormation would deploy it, and every function would fail at import.

    .venv/bin/python -m tools.shipping .aws-sam/build arm64
"""

import argparse
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
            artifact,
            quiet=1,
            stripdir=str(artifact),
            prependdir=target,
            workers=0,
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
        subprocess.run(
            [
                sys.executable,
                "-m",
                "pip",
                "install",
                "--quiet",
                "--target",
                str(RUNTIME_BOTO3),
                f"boto3=={boto3.__version__}",
            ],
            check=True,
            timeout=600,
            env=environment,
        )
        marker.touch()
    return RUNTIME_BOTO3


def lambda_pythonpath(build_dir: Path, function: str, runtime: Path) -> str:
    """/var/task, then /opt/python, then the runtime's own packages: Lambda's order."""
    return ":".join([str(build_dir / function), str(build_dir / "SharedLayer" / "python"), str(runtime)])


# ELF e_machine (bytes 18-19, little-endian) of the libraries each Lambda architecture can load.
ELF_MACHINES = {"x86_64": 0x3E, "arm64": 0xB7}


def foreign_libraries(build_dir: Path, architecture: str) -> list[str]:
    """Native libraries (ELF) of the build that the `architecture` cannot load."""
    wanted = ELF_MACHINES[architecture]
    foreign = []
    for path in sorted(build_dir.rglob("*.so*")):
        with path.open("rb") as library:
            header = library.read(20)
        if header[:4] == b"\x7fELF" and int.from_bytes(header[18:20], "little") != wanted:
            foreign.append(str(path.relative_to(build_dir)))
    return foreign


def check_architecture(build_dir: Path, architecture: str) -> None:
    foreign = foreign_libraries(build_dir, architecture)
    if foreign:
        raise SystemExit(
            f"The build holds native libraries that {architecture} Lambda functions cannot load:\n  "
            + "\n  ".join(foreign)
            + f"\nBuild again with the same Architecture the stack deploys (make build ARCH={architecture})."
        )


def main() -> None:
    parser = argparse.ArgumentParser(description="Check and compile a `sam build` output for shipping.")
    parser.add_argument("build_dir", type=Path)
    parser.add_argument("architecture", choices=sorted(ELF_MACHINES))
    options = parser.parse_args()
    check_architecture(options.build_dir, options.architecture)
    compile_build(options.build_dir)
    print(f"{options.build_dir}: every native library is {options.architecture}; bytecode compiled.")


if __name__ == "__main__":
    main()
