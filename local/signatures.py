"""The read API's AWS_IAM check, as API Gateway makes it, for the local stack: a request signed with
Signature Version 4 (service execute-api) must carry a signature the local credentials compute, or
it is refused 403 with API Gateway's message. An unsigned request is served, so curl and a
browser read `make dev` without a signer (AWS refuses those: docs/integration.md). A signer's
mistake (the wrong service, region, secret, path or query) thus shows on a laptop, not first in AWS.
The clock is not checked: the local stack's time can be moved (docs/development.md).
"""

import hmac
import re
from collections.abc import Mapping

from local.services import LOCAL_CREDENTIALS, REGION

_AUTHORIZATION = re.compile(
    r"AWS4-HMAC-SHA256 Credential=(?P<key>[^/,\s]+)/(?P<date>\d{8})/(?P<region>[^/]+)/(?P<service>[^/]+)/aws4_request,"
    r"\s*SignedHeaders=(?P<headers>[^,\s]+),\s*Signature=(?P<signature>[0-9a-f]{64})"
)
INVALID_TOKEN = "The security token included in the request is invalid."
MISMATCH = (
    "The request signature we calculated does not match the signature you provided. Check your AWS Secret "
    "Access Key and signing method. Consult the service documentation for details."
)


def refusal(method: str, path: str, raw_query: str, headers: Mapping[str, str]) -> str | None:
    """Why API Gateway would refuse this request's signature, or None (unsigned, or signed right)."""
    lowered = {name.lower(): value for name, value in headers.items()}
    authorization = lowered.get("authorization", "")
    if not authorization:
        return None
    found = _AUTHORIZATION.fullmatch(authorization.strip())
    if not found:
        return f"Authorization header requires 'Credential', 'SignedHeaders' and 'Signature': {authorization[:40]}"
    if found["key"] != LOCAL_CREDENTIALS["AWS_ACCESS_KEY_ID"]:
        return INVALID_TOKEN
    if (found["region"], found["service"]) != (REGION, "execute-api"):
        return f"Credential should be scoped to a valid region and service execute-api, not {found['region']}/{found['service']}"
    return (
        None
        if hmac.compare_digest(found["signature"], _signature(method, path, raw_query, lowered, found))
        else MISMATCH
    )


def _signature(method: str, path: str, raw_query: str, lowered: dict[str, str], found: re.Match[str]) -> str:
    """The signature botocore's signer computes for this request at the instant it names (`lowered`:
    its headers by lower-case name)."""
    from botocore.auth import SigV4Auth
    from botocore.awsrequest import AWSRequest
    from botocore.credentials import Credentials

    signed = found["headers"].split(";")
    url = f"http://{lowered.get('host', '')}{path}" + (f"?{raw_query}" if raw_query else "")
    request = AWSRequest(method=method, url=url, headers={name: lowered.get(name, "") for name in signed})
    request.context["timestamp"] = lowered.get("x-amz-date", "")
    credentials = Credentials(LOCAL_CREDENTIALS["AWS_ACCESS_KEY_ID"], LOCAL_CREDENTIALS["AWS_SECRET_ACCESS_KEY"])
    signer = SigV4Auth(credentials, "execute-api", REGION)
    string_to_sign = signer.string_to_sign(request, signer.canonical_request(request))
    return signer.signature(string_to_sign, request)
