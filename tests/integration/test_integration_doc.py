"""docs/integration.md's Python example, run as the page gives it, against the local stack's read
API: a vendor following the page gets the portal's entitlement (and None for a portal unknown)."""

import json
import os
import re
import subprocess
import urllib.request

import requests

from local import samples
from local.template import ROOT


def _the_pages_python_example() -> dict:
    page = (ROOT / "docs" / "integration.md").read_text()
    [code] = re.findall(r"### Python[^\n]*\n\n```python\n(.*?)```", page, flags=re.DOTALL)
    namespace: dict = {}
    exec(compile(code, "docs/integration.md", "exec"), namespace)  # noqa: S102 (our own page)
    return namespace


def test_following_the_integration_page_a_signed_request_reads_a_portals_entitlement(
    api, stack, table, installations, monkeypatch
):
    entitlement = _the_pages_python_example()["entitlement"]
    sent: list[urllib.request.Request] = []
    urlopen = urllib.request.urlopen
    monkeypatch.setattr(urllib.request, "urlopen", lambda request, **kw: sent.append(request) or urlopen(request, **kw))

    answer = entitlement(f"{api.url}/entitlements", samples.PORTAL_MEMBER_ID, "us-east-1")
    assert answer["member_id"] == samples.PORTAL_MEMBER_ID and isinstance(answer["entitled"], bool)
    signature = sent[0].get_header("Authorization")
    assert signature.startswith("AWS4-HMAC-SHA256 Credential=") and "/us-east-1/execute-api/aws4_request" in signature
    assert entitlement(f"{api.url}/entitlements", "0" * 32, "us-east-1") is None  # no such installation


def _signed_get(url: str, secret: str = "local", region: str = "us-east-1") -> requests.Response:
    from botocore.auth import SigV4Auth
    from botocore.awsrequest import AWSRequest
    from botocore.credentials import Credentials

    request = AWSRequest(method="GET", url=url)
    SigV4Auth(Credentials("local", secret), "execute-api", region).add_auth(request)
    return requests.get(url, headers=dict(request.headers), timeout=30)


def test_the_local_read_api_checks_a_signature_as_api_gateway_does_so_the_pages_200_means_signed_right(
    api, stack, table, installations
):
    url = f"{api.url}/entitlements/{samples.PORTAL_MEMBER_ID}"
    assert _signed_get(url).status_code == 200
    wrong_secret = _signed_get(url, secret="not-the-secret")
    assert (
        wrong_secret.status_code == 403 and "signature we calculated does not match" in wrong_secret.json()["message"]
    )
    assert _signed_get(url, region="eu-west-1").status_code == 403  # scoped to another region
    signed = _signed_get(url)
    moved = requests.get(
        f"{api.url}/entitlements/{'0' * 32}", headers=dict(signed.request.headers), timeout=30
    )  # a signature for one portal presented for another
    assert moved.status_code == 403
    assert requests.get(url, timeout=30).status_code == 200  # unsigned: make dev serves curl and browsers


def test_the_pages_curl_example_signs_as_the_local_read_api_checks(api, stack, table, installations):
    """curl's own signer (an implementation apart from botocore's) against the local check."""
    page = (ROOT / "docs" / "integration.md").read_text()
    [command] = re.findall(r"### curl\n\n```bash\n(.*?)```", page, flags=re.DOTALL)
    command = command.replace("eu-central-1:execute-api", "us-east-1:execute-api")
    command = re.sub(r'"https://[^"]*/entitlements/', f'"{api.url}/entitlements/', command)
    command = command.rstrip() + " --silent --output /dev/null --write-out '%{http_code}'"

    def status(secret: str) -> str:
        environment = {"PATH": os.environ["PATH"], "AWS_ACCESS_KEY_ID": "local", "AWS_SECRET_ACCESS_KEY": secret}
        return subprocess.run(
            ["bash", "-c", command], env={**environment, "AWS_SESSION_TOKEN": ""}, capture_output=True, text=True
        ).stdout

    assert status("local") == "200"
    assert status("not-the-secret") == "403"


def test_the_pages_node_example_reads_a_portals_entitlement_signed(api, stack, table, installations, tmp_path):
    """The page's Node.js module as given, with the AWS SDK's signer (package.json), from Node."""
    page = (ROOT / "docs" / "integration.md").read_text()
    [module] = re.findall(r"### Node.js[^\n]*\n\n```javascript\n(.*?)```", page, flags=re.DOTALL)
    folder = ROOT / ".cache" / "integration-example"  # beside node_modules, where Node finds the SDK
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "entitlement.mjs").write_text(module)
    (folder / "run.mjs").write_text(
        'import { entitlement } from "./entitlement.mjs";\n'
        "const [url, memberId] = process.argv.slice(2);\n"
        'console.log(JSON.stringify(await entitlement(url, memberId, "us-east-1")));\n'
    )

    def run(member_id: str, secret: str = "local") -> subprocess.CompletedProcess:
        environment = {
            "PATH": os.environ["PATH"],
            "HOME": str(tmp_path),  # no ~/.aws of this machine's: the environment's keys alone
            "AWS_ACCESS_KEY_ID": "local",
            "AWS_SECRET_ACCESS_KEY": secret,
        }
        return subprocess.run(
            ["node", str(folder / "run.mjs"), f"{api.url}/entitlements", member_id],
            env=environment,
            capture_output=True,
            text=True,
            timeout=60,
        )

    answered = run(samples.PORTAL_MEMBER_ID)
    assert answered.returncode == 0, answered.stderr[-2000:]
    assert json.loads(answered.stdout)["member_id"] == samples.PORTAL_MEMBER_ID
    assert json.loads(run("0" * 32).stdout) is None  # no such installation
    refused = run(samples.PORTAL_MEMBER_ID, secret="not-the-secret")
    assert refused.returncode != 0 and "entitlements answered 403" in refused.stderr
