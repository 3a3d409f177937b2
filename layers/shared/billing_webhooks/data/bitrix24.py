"""Calling a Bitrix24 portal's REST API: `app.info` (seed 003) to confirm an install and for the
licence sync, `event.get` and `batch` of `event.bind` to subscribe it to the app's lifecycle
(domain/bindings.py); and Bitrix24's OAuth server, to refresh a portal's tokens. The only
outbound calls we make.

The portal's address comes from the event's body, which anyone can POST. So before any request
the endpoint must be https, on the event's own `auth.domain`, a name (not an IP literal) on an
allowed Bitrix24 domain suffix, port 443, path `/rest/`. The request goes to the URL we rebuild
from those checked parts, never follows a redirect, and gives up after a short timeout.
"""

import ipaddress
import json
from decimal import Decimal
from typing import Any, NoReturn
from urllib.parse import urlencode, urlsplit

from pydantic import ValidationError

from billing_webhooks.errors import PortalUnavailable, WrongCredentials
from billing_webhooks.models.bitrix24 import AppInfo
from billing_webhooks.settings import settings

MAX_ANSWER_BYTES = 64 * 1024


def allowed_suffixes() -> list[str]:
    configured = settings().bitrix24_domain_suffixes
    return [suffix.strip().strip(".").lower() for suffix in configured.split(",") if suffix.strip().strip(".")]


def _on_allowed_suffix(host: str) -> bool:
    return any(host.endswith("." + suffix) for suffix in allowed_suffixes())


def _is_ip_literal(host: str) -> bool:
    try:
        ipaddress.ip_address(host.strip("[]"))
    except ValueError:
        return host.replace(".", "").isdigit()  # 2130706433, 127.1: what resolvers read as numbers
    return True


def app_info_url(domain: Any, client_endpoint: Any, *, vouched: bool = False) -> str:
    return rest_url(domain, client_endpoint, "app.info", vouched=vouched)


def off_the_cloud(domain: Any, client_endpoint: Any) -> bool:
    """The event names a portal endpoint we would call but for its domain, which is on none of
    Bitrix24's cloud zones (a self-hosted portal): called only once Bitrix24's OAuth server
    vouches for that domain. Anything else wrong with it is refused here, before any call."""
    try:
        rest_url(domain, client_endpoint, "app.info")
    except WrongCredentials:
        rest_url(domain, client_endpoint, "app.info", vouched=True)  # refuses what is wrong beyond the zone
        return True
    return False


def rest_url(domain: Any, client_endpoint: Any, method: str, *, vouched: bool = False) -> str:
    """The URL of a REST `method` of the portal named by the event, or a refusal if it names
    anything else. `vouched`: Bitrix24's OAuth server named this domain for the portal's tokens,
    so a domain off Bitrix24's cloud zones (a self-hosted portal) is called too."""
    if not isinstance(domain, str) or not isinstance(client_endpoint, str):
        raise WrongCredentials("auth[domain] and auth[client_endpoint] are required.")
    try:
        parts = urlsplit(client_endpoint.strip())
        port = parts.port
    except ValueError:
        raise WrongCredentials("auth[client_endpoint] is not a valid URL.") from None
    host = (parts.hostname or "").lower()
    if parts.scheme != "https":
        raise WrongCredentials("auth[client_endpoint] must be an https URL.")
    if parts.username is not None or parts.password is not None or port not in (None, 443):
        raise WrongCredentials("auth[client_endpoint] must not carry credentials or a port.")
    if not host or host != domain.strip().lower():
        raise WrongCredentials("auth[client_endpoint] must be on the portal's own auth[domain].")
    if _is_ip_literal(host) or not (vouched or _on_allowed_suffix(host)):
        raise WrongCredentials(f"{host!r} is not on an allowed Bitrix24 domain.")
    if parts.path.rstrip("/") != "/rest" or parts.query or parts.fragment:
        raise WrongCredentials("auth[client_endpoint] must be the portal's /rest/ endpoint.")
    return f"https://{host}/rest/{method}"


def check_server_endpoint(server_endpoint: Any) -> str:
    """`auth[server_endpoint]`, kept with the installation, must be Bitrix24's OAuth server: https,
    a host on BITRIX24_OAUTH_HOSTS, no credentials or port, path /rest/."""
    configured = settings().bitrix24_oauth_hosts
    hosts = {host.strip().lower() for host in configured.split(",") if host.strip()}
    try:
        parts = urlsplit(server_endpoint.strip()) if isinstance(server_endpoint, str) else None
        port = parts.port if parts else None
    except ValueError:
        parts = None
    if (
        parts is None
        or parts.scheme != "https"
        or (parts.hostname or "").lower() not in hosts
        or parts.username is not None
        or parts.password is not None
        or port not in (None, 443)
        or parts.path.rstrip("/") != "/rest"
        or parts.query
        or parts.fragment
    ):
        raise WrongCredentials(
            "auth[server_endpoint] must be one of Bitrix24's OAuth servers "
            f"({', '.join(f'https://{host}/rest/' for host in sorted(hosts))})."
        )
    return server_endpoint


def _opener():
    # Lazy here and in call(): urllib.request and ssl cost about 25 ms of cold start (python -X
    # importtime) that the payment and uninstall functions, which never call a portal, do not pay.
    import ssl
    import urllib.request

    class RefuseRedirects(urllib.request.HTTPRedirectHandler):
        def redirect_request(self, *args: Any, **kwargs: Any) -> None:
            return None  # a redirect is answered as an error: it could point anywhere

    context = ssl.create_default_context()
    return urllib.request.build_opener(urllib.request.HTTPSHandler(context=context), RefuseRedirects())


class AnswerLost(PortalUnavailable):
    """The request went out and no answer came back (a timeout or a dropped connection while
    waiting): whatever it asked may have been done. A refresh so lost may have rotated the pair."""


def _answer_lost(exc: Exception) -> bool:
    """urllib wraps what fails before the request is sent (DNS, connect, TLS, the proxy) in a
    URLError; what fails while waiting for the answer, or reading it, comes through bare."""
    import http.client
    from urllib.error import URLError

    if isinstance(exc, URLError):
        return False
    return isinstance(exc, TimeoutError | ConnectionError | http.client.HTTPException)


class NoSuchPortal(PortalUnavailable):
    """No Bitrix24 portal (or no REST) there: the host answered 404 or a redirect, or its name
    does not exist (DNS says so, which a passing outage does not)."""


def _no_such_host(exc: Exception) -> bool:
    import socket
    from urllib.error import URLError

    reason = getattr(exc, "reason", None) if isinstance(exc, URLError) else None
    gone = {getattr(socket, name) for name in ("EAI_NONAME", "EAI_NODATA") if hasattr(socket, name)}
    return isinstance(reason, socket.gaierror) and reason.errno in gone


def _fetch(request: Any, what: str, timeout: float | None = None) -> Any:
    """Open a checked URL (never following a redirect), within `timeout` (the portal timeout
    unless given); its JSON, or PortalUnavailable naming `what` (never the URL: it may hold a
    secret), AnswerLost when the request went out and no answer came."""
    import time

    started, status = time.monotonic(), "no answer"
    try:
        with _opener().open(request, timeout=timeout or settings().bitrix24_portal_timeout_seconds) as response:
            status = str(response.status)
            return json.loads(response.read(MAX_ANSWER_BYTES), parse_float=Decimal)  # cut short: unreadable
    except Exception as exc:  # HTTP errors, redirects, TLS, timeouts, garbage: it did not answer
        status = str(getattr(exc, "code", None) or exc.__class__.__name__)
        _raise_as_answered(exc, what)
    finally:
        _log_request(request, status, time.monotonic() - started)


def _log_request(request: Any, status: str, seconds: float) -> None:
    """One line per request to Bitrix24: its method and host, never its query or body (they hold
    tokens and the app's secret)."""
    from billing_webhooks.observability import rest_log

    url = request.full_url if hasattr(request, "full_url") else str(request)
    parts = urlsplit(url)
    rest_log().info(
        "bitrix24 request",
        extra={
            "method": parts.path.removeprefix("/rest/").strip("/") or "/",
            "portal": parts.hostname,
            "status": status,
            "duration_ms": round(seconds * 1000),
        },
    )


def _raise_as_answered(exc: Exception, what: str) -> NoReturn:
    refused = _refused_token(exc)
    if refused:
        raise TokenRefused(f"{what} refused the token ({refused}).", refused) from None
    code = getattr(exc, "code", None)
    if code == 404 or (isinstance(code, int) and 300 <= code < 400) or _no_such_host(exc):
        # Nothing there answers a portal's REST (a name no portal has, a page that sends us
        # elsewhere): a made-up portal is refused, never parked and retried as an outage.
        raise NoSuchPortal(f"{what} answered {_describe(exc)}: no portal's REST there.") from None
    if _answer_lost(exc):
        raise AnswerLost(f"{what} took the request and never answered ({_describe(exc)}).") from None
    raise PortalUnavailable(f"{what} did not answer ({_describe(exc)}).") from None


# Bitrix24's named refusals of a token: not an outage, a credential refused (HTTP 401 from a
# portal, 400 from the OAuth server), or the app unpaid (402 PAYMENT_REQUIRED, the trusted signal).
TOKEN_ERRORS = frozenset(
    {"invalid_token", "expired_token", "NO_AUTH_FOUND", "INVALID_CREDENTIALS", "invalid_grant", "PAYMENT_REQUIRED"}
)
EXPIRED_TOKEN, INVALID_GRANT, PAYMENT_REQUIRED = "expired_token", "invalid_grant", "PAYMENT_REQUIRED"


class TokenRefused(PortalUnavailable):
    """The portal or the OAuth server refused the token, by name (`error`)."""

    def __init__(self, detail: str, error: str) -> None:
        super().__init__(detail)
        self.error = error


def _refused_token(exc: Exception) -> str | None:
    if getattr(exc, "code", None) not in (400, 401, 402, 403):
        return None
    try:
        error = json.loads(exc.read(MAX_ANSWER_BYTES)).get("error")  # type: ignore[attr-defined]  # an HTTPError reads like a response
    except Exception:
        return None
    return error if error in TOKEN_ERRORS else None


def call(url: str, access_token: str, params: list[tuple[str, str]] | None = None) -> Any:
    """POST a REST method with the event's access token (in the body, never the URL); the
    portal's `result`, or PortalUnavailable."""
    import urllib.request

    method = url.rsplit("/", 1)[-1]
    _place_in_the_bucket(urlsplit(url).hostname or "")
    request = urllib.request.Request(
        url,
        data=urlencode([("auth", access_token), *(params or [])]).encode(),
        headers={"Content-Type": "application/x-www-form-urlencoded", "Accept": "application/json"},
        method="POST",
    )
    answer = _fetch(request, f"The portal's {method}")
    if not isinstance(answer, dict) or "result" not in answer:
        raise PortalUnavailable(f"The portal answered {method} without a result ({_portal_error(answer)}).")
    return answer["result"]


MOST_BUCKET_WAIT_SECONDS = 10.0


def _place_in_the_bucket(host: str) -> None:
    """Wait for a place in the portal's REST bucket, shared by every container (data/rest_buckets.py),
    so that however many call it at once, none is answered QUERY_LIMIT_EXCEEDED. A bucket that
    stays full is an outage to retry; a bucket that cannot be read lets the call go (each
    container's own pacer still spaces its requests)."""
    import time

    from billing_webhooks import clock
    from billing_webhooks.data import rest_buckets
    from billing_webhooks.errors import ServiceUnavailable

    if not rest_buckets.enabled():
        return
    waited = 0.0
    while True:
        try:
            wait = rest_buckets.take(host, clock.epoch())
        except ServiceUnavailable:
            return
        if not wait:
            return
        if waited + wait > MOST_BUCKET_WAIT_SECONDS:
            raise PortalUnavailable("The portal's REST bucket is full (2 requests a second, a burst of 50).")
        time.sleep(wait)
        waited += wait


def app_info(url: str, access_token: str) -> AppInfo:
    """POST `app.info` with the install's access token; the portal's answer, WrongCredentials when
    the portal refuses the token (a stranger's made-up one: 403, nothing kept), or PortalUnavailable."""
    try:
        return read_app_info(url, access_token)
    except TokenRefused as refused:
        if refused.error == PAYMENT_REQUIRED:  # the app unpaid: the portal said who it is all the same
            raise
        raise WrongCredentials(refused.detail) from None


def read_app_info(url: str, access_token: str) -> AppInfo:
    """POST `app.info` with a kept access token: the portal's answer, TokenRefused naming Bitrix24's
    refusal (expired_token...), or PortalUnavailable."""
    result = call(url, access_token)
    if not isinstance(result, dict):
        raise PortalUnavailable("The portal answered app.info without a result (no error code).")
    try:
        return AppInfo.model_validate(result)
    except ValidationError:
        raise PortalUnavailable("The portal's app.info answer is not readable.") from None


def is_administrator(domain: Any, client_endpoint: Any, access_token: str, *, vouched: bool = False) -> bool:
    """POST `user.admin` with an event's access token: whether its user administers the portal
    (Bitrix24 lets only administrators install apps). TokenRefused, or PortalUnavailable."""
    return call(rest_url(domain, client_endpoint, "user.admin", vouched=vouched), access_token) is True


def refresh_tokens(server_endpoint: str, refresh_token: str, client_id: str, client_secret: str) -> dict[str, Any]:
    """Bitrix24's OAuth server's answer to a refresh: a new access and refresh token, and the
    `member_id` and `client_endpoint` they belong to. The request goes as Bitrix24 documents it
    (GET, parameters in the query) to the checked OAuth host. The refresh token it was given is
    spent: the caller keeps the new pair (domain/portal_tokens.py) or loses the portal."""
    host = urlsplit(check_server_endpoint(server_endpoint)).hostname
    query = urlencode(
        {
            "grant_type": "refresh_token",
            "client_id": client_id,
            "client_secret": client_secret,
            "refresh_token": refresh_token,
        }
    )
    # Given the time Bitrix24 takes: an answer that comes after we gave up has still rotated the pair.
    answer = _fetch(
        f"https://{host}/oauth/token/?{query}", "Bitrix24's OAuth server", settings().bitrix24_oauth_timeout_seconds
    )
    if not isinstance(answer, dict) or not isinstance(answer.get("member_id"), str):
        raise PortalUnavailable(f"Bitrix24's OAuth server answered without a member_id ({_portal_error(answer)}).")
    if not all(isinstance(answer.get(name), str) and answer[name] for name in ("access_token", "refresh_token")):
        raise PortalUnavailable("Bitrix24's OAuth server answered without a token pair.")
    return answer


def _describe(exc: Exception) -> str:
    code = getattr(exc, "code", None)
    if _no_such_host(exc):
        return "no such host"
    return f"HTTP {code}" if isinstance(code, int) else exc.__class__.__name__


def _portal_error(answer: Any) -> str:
    # Bitrix24 errors look like {"error": "expired_token", "error_description": "..."}; the code is enough.
    error = answer.get("error") if isinstance(answer, dict) else None
    return str(error)[:64] if error else "no error code"
