"""docs/integration.md's Python example, run as the page gives it, against the local stack's read
API: a vendor following the page gets the portal's entitlement (and None for a portal unknown)."""

import re
import urllib.request

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
