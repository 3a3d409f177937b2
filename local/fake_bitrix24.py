"""A fake Bitrix24 cloud on 127.0.0.1: every portal's `app.info`, `event.get`, `event.bind` and
`batch`, and the OAuth server's token refresh (oauth.bitrix.info), over real TLS.

It is an HTTPS proxy (`HTTPS_PROXY=http://127.0.0.1:<port>`) that answers each CONNECT itself:
it terminates TLS with a certificate for the portal's name, signed by a CA of its own
(`SSL_CERT_FILE=<ca.pem>` makes the handlers trust it), and plays the portal. So the handlers
make the very request they make in AWS (https, host name, certificate check) without DNS or
internet, and the fake sees every host anybody tried to reach.
"""

import json
import math
import random
import secrets
import ssl
import tempfile
import threading
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, urlencode
from urllib.request import Request as HttpRequest
from urllib.request import urlopen

from local import template
from local.clock import TestClock, iso

OAUTH_HOST = "oauth.bitrix.info"
OAUTH_HOSTS = (OAUTH_HOST, "oauth.bitrix24.tech")  # Bitrix24's OAuth servers, every region
# Wildcards cover one label: "<portal>.bitrix24.com".
ACCESS_TOKEN_SECONDS = 3600  # Bitrix24's access tokens live an hour
REFRESH_TOKEN_SECONDS = 180 * 86400  # and its refresh tokens 180 days
BUCKET_SIZE, BUCKET_LEAK_PER_SECOND = 50, 2.0  # each portal's REST requests: 2 a second, a burst of 50
DAY_SECONDS = 86400
# Every zone of Bitrix24's cloud, as the template's default lets in (its parameter names the source).
CERTIFICATE_SUFFIXES = tuple(template.parameter_default("Bitrix24DomainSuffixes").split(","))
# Self-hosted portals (Bitrix24 on a company's own domain): on none of the cloud zones above.
SELF_HOSTED_SUFFIX = "self-hosted.example"


@dataclass
class Portal:
    """How one fake portal answers `app.info`, and the event handlers bound on it."""

    access_token: str
    code: str
    installed: bool = True
    status: str = "P"
    days: int | None = 28
    payment_expired: str = "N"
    license: str = "en_project"
    # How its OAuth server answers a refresh: ok | invalid_grant | payment_required | down (503) |
    # lost (the pair rotated, then the connection dropped: no answer comes)
    oauth: str = "ok"
    oauth_latency_ms: float = 0  # before each refresh's answer (the OAuth server taking its time)
    calls: dict[str, int] = field(default_factory=dict)  # app.info, refresh, event.get, event.bind: how many
    answer: str = "ok"  # ok | error (a Bitrix24 error body, HTTP 401) | slow | redirect
    redirect_to: str = "https://169.254.169.254/latest/meta-data/"
    slow_seconds: float = 2.0
    member_id: str = ""  # what the OAuth server says the portal's tokens belong to
    refresh_token: str = "q5f0idlro1tn4gvcxa2ojeo4hp16hwbs"  # the installing user's, as the samples carry it
    bindings: list[dict[str, Any]] = field(default_factory=list)  # as event.get lists them
    binds: str = "ok"  # ok | refuse (event.bind errors inside the batch) | down (event.get fails) | redirect
    # Access tokens it issued before the last (still valid, as Bitrix24's are for their hour), and
    # those it answers `expired_token` to (`access_token_expired`) until a refresh issues a new one.
    earlier_tokens: set[str] = field(default_factory=set)
    expired_tokens: set[str] = field(default_factory=set)
    latency_ms: float = 0  # before every answer of this portal and of its refreshes (load runs)
    fail_rate: float = 0  # this share of its requests answered 503 QUERY_LIMIT_EXCEEDED, nothing done
    slow_rate: float = 0  # this share of its answers (refreshes too) take 5 to 15 s
    lost_rate: float = 0  # this share of its refreshes rotate the pair, then never answer
    request_times: list[float] = field(default_factory=list)  # monotonic, of its last 3 REST requests
    # A licence with a real end on the test clock (epoch seconds): app.info's STATUS, DAYS and
    # PAYMENT_EXPIRED follow from it. None: app.info answers the fields as set.
    paid_until: float | None = None
    trial_until: float | None = None
    application_token: str = ""  # what its ONAPPPAYMENT deliveries carry
    # When each access token it issued expires on the clock (tokens not here, the samples' and
    # tests' own, never do); its refresh token's end (None: never); the other users' refresh tokens.
    token_expiry: dict[str, float] = field(default_factory=dict)
    refresh_expires: float | None = None
    user_refresh: dict[str, tuple[float, bool]] = field(default_factory=dict)  # refresh token -> (end, admin)
    # Access tokens of its ordinary users (not administrators): the installer's pair, and every pair
    # refreshed from it, is an administrator's, as Bitrix24 lets only administrators install apps.
    ordinary_tokens: set[str] = field(default_factory=set)
    bucket_level: float = 0.0
    bucket_at: float = 0.0
    refreshes_by_day: dict[str, int] = field(default_factory=dict)
    # Refresh tokens as a user's app page or an install or update received them, never refreshed:
    # refreshing one is how the stack vouches for the event (its administrator's act, not a renewal).
    handed_out: set[str] = field(default_factory=set)
    vouchings_by_day: dict[str, int] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.handed_out.add(self.refresh_token)  # the samples' installer's, as its install carries it

    # What `PUT /_portals/<domain>` may set (docs/development.md): app.info's fields, how the portal
    # and its OAuth server answer.
    SETTABLE = {
        "STATUS": "status",
        "PAYMENT_EXPIRED": "payment_expired",
        "DAYS": "days",
        "INSTALLED": "installed",
        "LICENSE": "license",
        "oauth": "oauth",
        "oauth_latency_ms": "oauth_latency_ms",
        "member_id": "member_id",
        "access_token": "access_token",
        "access_token_expired": "access_token_expired",
        "latency_ms": "latency_ms",
        "fail_rate": "fail_rate",
        "paid_until": "paid_until",
        "trial_until": "trial_until",
        "application_token": "application_token",
    }
    MOMENTS = ("paid_until", "trial_until")  # ISO 8601 on the wire, epoch seconds here

    @property
    def access_token_expired(self) -> bool:
        return self.access_token in self.expired_tokens

    @access_token_expired.setter
    def access_token_expired(self, expired: bool) -> None:
        if expired:
            self.expired_tokens |= {self.access_token, *self.earlier_tokens, *self.token_expiry}
        else:
            self.expired_tokens.clear()

    def token_error(self, token: str, now: float) -> str | None:
        """How it answers a request made with `token`: None (taken), expired_token or invalid_token."""
        if token in self.expired_tokens or self.token_expiry.get(token, math.inf) <= now:
            return "expired_token"
        known = token == self.access_token or token in self.earlier_tokens or token in self.token_expiry
        return None if known else "invalid_token"

    def issue(self, now: float) -> str:
        """A refresh's new access token, valid for an hour; the old one stays valid (its hour is not up)."""
        self.earlier_tokens.add(self.access_token)
        self.access_token = f"access-{secrets.token_hex(12)}"
        self.token_expiry[self.access_token] = now + ACCESS_TOKEN_SECONDS
        return self.access_token

    def revoke(self) -> None:
        """The app uninstalled: every token it issued for the app stops working."""
        self.expired_tokens |= {self.access_token, *self.earlier_tokens, *self.token_expiry}
        self.refresh_token = f"revoked-{secrets.token_hex(12)}"
        self.user_refresh.clear()
        self.handed_out.clear()
        self.ordinary_tokens.clear()

    def user_pair(self, admin: bool, now: float, *, handed_out: bool = True) -> dict[str, Any]:
        """The pair a user's app page receives (AUTH_ID, REFRESH_ID), an administrator's or not;
        `handed_out` False: the pair a refresh of one answers."""
        access, refresh = f"access-{secrets.token_hex(12)}", f"refresh-{secrets.token_hex(12)}"
        self.token_expiry[access] = now + ACCESS_TOKEN_SECONDS
        self.user_refresh[refresh] = (now + REFRESH_TOKEN_SECONDS, admin)
        if handed_out:
            self.handed_out.add(refresh)
        if not admin:
            self.ordinary_tokens.add(access)
        return {"AUTH_ID": access, "REFRESH_ID": refresh, "AUTH_EXPIRES": ACCESS_TOKEN_SECONDS, "admin": admin}

    def over_bucket(self, now: float) -> bool:
        """One REST request into its leaky bucket (2 a second, a burst of 50): True when it overflows."""
        self.bucket_level = max(0.0, self.bucket_level - (now - self.bucket_at) * BUCKET_LEAK_PER_SECOND)
        self.bucket_at = now
        if self.bucket_level + 1 > BUCKET_SIZE:
            self.count("over_bucket")
            return True
        self.bucket_level += 1
        return False

    def licence_fields(self, now: float) -> dict[str, Any]:
        """app.info's STATUS, DAYS and PAYMENT_EXPIRED: from the licence's end on the clock, when it
        has one (DAYS whole days left, rounded up; 0 or below once it ended), else as set."""
        until = self.paid_until if self.paid_until is not None else self.trial_until
        if until is None:
            return {"STATUS": self.status, "DAYS": self.days, "PAYMENT_EXPIRED": self.payment_expired}
        return {
            "STATUS": self.status if self.paid_until is not None else "T",
            "DAYS": math.ceil((until - now) / DAY_SECONDS),
            "PAYMENT_EXPIRED": "Y" if now >= until else "N",
        }

    def truth(self, now: float) -> dict[str, Any]:
        """What is true of the portal now, as Bitrix24 knows it (what the stack's answer is held against)."""
        paid = self.paid_until is not None and now < self.paid_until
        trial = not paid and self.trial_until is not None and now < self.trial_until
        has_end = self.paid_until is not None or self.trial_until is not None
        until = self.paid_until if self.paid_until is not None else self.trial_until
        return {
            "installed": bool(self.installed),
            "uninstalled": not self.installed,
            "paid": paid,
            "trial": trial,
            "ended": has_end and not paid and not trial,
            "until": iso(until) if until is not None else None,
        }

    def pay(self, days: int, now: float) -> None:
        """A payment for `days` more: from the current end, or from now when it has passed."""
        self.paid_until = max(self.paid_until or now, now) + days * DAY_SECONDS
        self.trial_until = None
        self.status = "P"

    def arrived(self, rest: bool = True) -> bool:
        """A request for this portal arrives: wait its latency; False when it fails this one.
        Counts `over_rate` when a REST request is the third within one second (Bitrix24 allows 2 a
        second; a refresh goes to the OAuth server, not the portal)."""
        if rest:
            now = time.monotonic()
            self.request_times = [*self.request_times[-2:], now]
            if len([moment for moment in self.request_times if now - moment < 1]) >= 3:
                self.count("over_rate")
        if self.latency_ms:
            time.sleep(float(self.latency_ms) / 1000)
        if self.slow_rate and random.random() < float(self.slow_rate):
            self.count("slow")
            time.sleep(random.uniform(5, 15))
        if self.fail_rate and random.random() < float(self.fail_rate):
            self.count("failed")
            return False
        return True

    def count(self, call: str) -> None:
        self.calls[call] = self.calls.get(call, 0) + 1

    def control_view(self, now: float) -> dict[str, Any]:
        view = {name: getattr(self, attribute) for name, attribute in self.SETTABLE.items()}
        for name in self.MOMENTS:
            view[name] = iso(view[name]) if view[name] is not None else None
        return {
            **view,
            "calls": dict(self.calls),
            "bindings": list(self.bindings),
            "refreshes_by_day": dict(self.refreshes_by_day),
            "vouchings_by_day": dict(self.vouchings_by_day),
            "truth": self.truth(now),
        }

    def bind(self, event: str, handler: str) -> dict[str, str] | None:
        """event.bind: an error answer, or None once bound."""
        if self.binds == "refuse":
            return {"error": "ERROR_CORE", "error_description": "Unable to set event handler"}
        if any(b["event"] == event.upper() and b["handler"] == handler for b in self.bindings):
            return {"error": "ERROR_CORE", "error_description": "Handler already binded"}
        self.bindings.append({"event": event.upper(), "handler": handler, "auth_type": "0", "offline": 0})
        return None

    def batch(self, form: dict[str, str]) -> dict[str, Any]:
        results: dict[str, Any] = {}
        errors: dict[str, Any] = {}
        for key, command in form.items():
            if key.startswith("cmd[") and key.endswith("]"):
                method, _, query = command.partition("?")
                arguments = dict(parse_qsl(query))
                error = (
                    self.bind(arguments.get("event", ""), arguments.get("handler", ""))
                    if method == "event.bind"
                    else {"error": "ERROR_METHOD_NOT_FOUND"}
                )
                (errors if error else results)[key[4:-1]] = error or True
        return {"result": {"result": results, "result_error": errors, "result_total": [], "result_next": []}}

    def app_info(self, now: float) -> dict[str, Any]:
        return {
            "result": {
                "ID": "7",
                "CODE": self.code,
                "VERSION": 1,
                "INSTALLED": self.installed,
                **self.licence_fields(now),
                "LICENSE": self.license,
            }
        }


def _moment(value: Any) -> float | None:
    """An ISO 8601 instant with its offset, as epoch seconds (None: null, no end)."""
    if value is None:
        return None
    moment = datetime.fromisoformat(str(value).replace("Z", "+00:00"))
    if moment.tzinfo is None:
        raise ValueError("an instant needs its offset")
    return moment.timestamp()


def _valid_changes(changes: dict[str, Any]) -> bool:
    numbers = [changes[name] for name in ("latency_ms", "fail_rate", "oauth_latency_ms") if name in changes]
    try:
        for name in Portal.MOMENTS:
            if name in changes:
                changes[name] = _moment(changes[name])
    except (TypeError, ValueError):
        return False
    return (
        isinstance(changes.get("access_token_expired", False), bool)
        and all(isinstance(n, int | float) and not isinstance(n, bool) and n >= 0 for n in numbers)
        and 0 <= changes.get("fail_rate", 0) <= 1
    )


PAYMENT_EVENTS = ("now", "late", "lost")


def _number(value: Any) -> float | None:
    return float(value) if isinstance(value, int | float) and not isinstance(value, bool) else None


def _payment(request: Any) -> tuple[int, str, float] | None:
    """`{"days": N, "event": "now" | "late" | "lost", "late_seconds": S}`, read; None when it is not that."""
    if not isinstance(request, dict) or not set(request) <= {"days", "event", "late_seconds"}:
        return None
    days, late = _number(request.get("days")), _number(request.get("late_seconds", 0))
    event = request.get("event", "now")
    if days is None or late is None or event not in PAYMENT_EVENTS:
        return None
    if not 1 <= days <= 36_500 or days != int(days) or not 0 <= late <= 10 * 365 * DAY_SECONDS:
        return None
    return int(days), event, late


@dataclass
class Request:
    host: str  # as asked in CONNECT
    method: str = ""
    path: str = ""
    auth: str = ""  # the access token the caller sent
    form: dict[str, str] = field(default_factory=dict)  # what else it sent


def _certificates(directory: Path) -> tuple[Path, Path, Path]:
    """A CA and a leaf for *.<suffix>, as strict as Python 3.13's default verification wants."""
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

    now = datetime.now(UTC)
    ca_key, leaf_key = ec.generate_private_key(ec.SECP256R1()), ec.generate_private_key(ec.SECP256R1())
    ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "Fake Bitrix24 local CA")])
    ca = (
        x509.CertificateBuilder()
        .subject_name(ca_name)
        .issuer_name(ca_name)
        .public_key(ca_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - timedelta(minutes=5))
        .not_valid_after(now + timedelta(days=7))
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=False,
                content_commitment=False,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=False,
                key_cert_sign=True,
                crl_sign=True,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(ca_key.public_key()), critical=False)
        .sign(ca_key, hashes.SHA256())
    )
    names = [x509.DNSName(f"*.{suffix}") for suffix in (*CERTIFICATE_SUFFIXES, SELF_HOSTED_SUFFIX)] + [
        x509.DNSName(host) for host in OAUTH_HOSTS
    ]
    leaf = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "fake portal")]))
        .issuer_name(ca_name)
        .public_key(leaf_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - timedelta(minutes=5))
        .not_valid_after(now + timedelta(days=7))
        .add_extension(x509.SubjectAlternativeName(names), critical=False)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
        .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()), critical=False)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(leaf_key.public_key()), critical=False)
        .sign(ca_key, hashes.SHA256())
    )
    pem = serialization.Encoding.PEM
    ca_file, cert_file, key_file = directory / "ca.pem", directory / "portal.pem", directory / "portal.key"
    ca_file.write_bytes(ca.public_bytes(pem))
    cert_file.write_bytes(leaf.public_bytes(pem))
    key_file.write_bytes(leaf_key.private_bytes(pem, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()))
    return ca_file, cert_file, key_file


@dataclass
class FakeBitrix24:
    portals: dict[str, Portal] = field(default_factory=dict)  # by domain
    requests: list[Request] = field(default_factory=list)
    port: int = 0  # 0: any free one (FAKE_BITRIX24_PORT for make dev)
    app_code: str = ""  # the CODE a portal created over the control route answers in app.info
    app_credentials: tuple[str, str] = ("", "")  # the app's client_id and client_secret, as the OAuth server knows them
    clock: TestClock = field(default_factory=TestClock)  # the stack's one clock (local/clock.py)
    deliver_to: str = ""  # the stack's HTTP API, where its ONAPPPAYMENT deliveries go
    pending: list[tuple[float, str, int]] = field(default_factory=list)  # (when, domain, days) to deliver
    deliveries: list[dict[str, Any]] = field(default_factory=list)  # what it delivered, and the answers
    clock_answer: Any = None  # `POST /_clock`'s runner (ClockRunner.answer); None: the clock only moves

    def _refreshed(self, portal: Portal, token: str, now: float) -> tuple[str, str] | None:
        """The new pair for a refresh token of this portal (each works once, within its 180 days)."""
        if portal.refresh_token == token and (portal.refresh_expires is None or now < portal.refresh_expires):
            portal.refresh_token = f"refresh-{secrets.token_hex(12)}"
            portal.refresh_expires = now + REFRESH_TOKEN_SECONDS
            return portal.issue(now), portal.refresh_token
        ends, admin = portal.user_refresh.pop(token, (0.0, False))
        if now < ends:
            pair = portal.user_pair(admin, now, handed_out=False)
            return pair["AUTH_ID"], pair["REFRESH_ID"]
        return None

    def refresh(self, query: dict[str, str]) -> tuple[int, dict[str, Any]]:
        """oauth.bitrix.info/oauth/token/?grant_type=refresh_token: whose portal the token is."""
        if (query.get("client_id"), query.get("client_secret")) != self.app_credentials:
            return 401, {"error": "invalid_client", "error_description": "Invalid client credentials"}
        token, now = query.get("refresh_token", ""), self.clock.time()
        for domain, portal in list(self.portals.items()):
            if query.get("grant_type") != "refresh_token":
                break
            if portal.refresh_token != token and token not in portal.user_refresh:
                continue
            if not portal.arrived(rest=False):
                return 503, {"error": "QUERY_LIMIT_EXCEEDED", "error_description": "Too many requests"}
            portal.count("refresh")
            if portal.oauth_latency_ms:
                time.sleep(float(portal.oauth_latency_ms) / 1000)
            if portal.oauth == "down":
                return 503, {"error": "SERVICE_UNAVAILABLE", "error_description": "The OAuth server is unavailable"}
            if portal.oauth == "invalid_grant":
                return 400, {"error": "invalid_grant", "error_description": "The refresh token is revoked"}
            if portal.oauth == "payment_required":
                return 402, {"error": "PAYMENT_REQUIRED", "error_description": "The application is not paid"}
            vouching = token in portal.handed_out
            pair = self._refreshed(portal, token, now)
            if pair is None:
                break
            portal.handed_out.discard(token)
            if portal.oauth == "lost" or (portal.lost_rate and random.random() < portal.lost_rate):
                portal.count("lost")  # rotated at Bitrix24; the answer never reaches the caller
                return 0, {}
            day = iso(now)[:10]
            portal.refreshes_by_day[day] = portal.refreshes_by_day.get(day, 0) + 1
            if vouching:
                portal.vouchings_by_day[day] = portal.vouchings_by_day.get(day, 0) + 1
            return 200, {
                "access_token": pair[0],
                "refresh_token": pair[1],
                "expires_in": 3600,
                "scope": "app",
                "domain": OAUTH_HOST,
                "server_endpoint": f"https://{OAUTH_HOST}/rest/",
                "status": "L",
                "client_endpoint": f"https://{domain}/rest/",
                "member_id": portal.member_id,
            }
        return 400, {"error": "invalid_grant", "error_description": "Invalid refresh token"}

    def payment(self, domain: str, days: int, event: str, late_seconds: float) -> None:
        """A payment on the portal: its licence extended now; its ONAPPPAYMENT delivered now, after
        `late_seconds` on the clock, or never."""
        now = self.clock.time()
        self.portals[domain].pay(days, now)
        if event == "now":
            self.deliver_payment(domain, days)
        elif event == "late":
            self.pending.append((now + late_seconds, domain, days))
            self.pending.sort()

    def next_delivery(self) -> float | None:
        return self.pending[0][0] if self.pending else None

    def deliver_due(self, instant: float) -> list[dict[str, Any]]:
        """The late deliveries whose time came by `instant`, in order."""
        done = []
        while self.pending and self.pending[0][0] <= instant:
            _, domain, days = self.pending.pop(0)
            done.append(self.deliver_payment(domain, days))
        return done

    def deliver_payment(self, domain: str, days: int) -> dict[str, Any]:
        """ONAPPPAYMENT as Bitrix24 posts it to the app's handler, with the licence as it stands now."""
        portal, now = self.portals[domain], self.clock.time()
        fields = portal.licence_fields(now)
        form = {
            "event": "ONAPPPAYMENT",
            "data[CODE]": portal.code,
            "data[VERSION]": "1",
            "data[STATUS]": fields["STATUS"],
            "data[PAYMENT_EXPIRED]": fields["PAYMENT_EXPIRED"],
            "data[DAYS]": str(fields["DAYS"]),
            "data[LANGUAGE_ID]": "en",
            "ts": str(int(now)),
            "auth[domain]": domain,
            "auth[server_endpoint]": f"https://{OAUTH_HOST}/rest/",
            "auth[client_endpoint]": f"https://{domain}/rest/",
            "auth[member_id]": portal.member_id,
            "auth[application_token]": portal.application_token,
        }
        request = HttpRequest(
            f"{self.deliver_to}/bitrix24/app-payment",
            data=urlencode(form).encode(),
            headers={"Content-Type": "application/x-www-form-urlencoded"},
        )
        try:
            with urlopen(request, timeout=60) as answer:  # noqa: S310 (the stack's own loopback API)
                status = answer.status
        except OSError as error:  # an HTTPError is an answer too: its code
            status = getattr(error, "code", 0)
        delivery = {"at": iso(now), "domain": domain, "event": "ONAPPPAYMENT", "days": days, "status": status}
        self.deliveries.append(delivery)
        return delivery

    def start(self) -> "FakeBitrix24":
        self._directory = tempfile.TemporaryDirectory(prefix="fake-bitrix24-")
        self.ca_file, cert_file, key_file = _certificates(Path(self._directory.name))
        tls = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        tls.load_cert_chain(cert_file, key_file)
        fake = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"
            tunnel: Request | None = None

            def do_CONNECT(self) -> None:  # noqa: N802
                self.tunnel = Request(host=self.path)
                fake.requests.append(self.tunnel)
                self.send_response(200, "Connection established")
                self.end_headers()
                try:
                    self.connection = tls.wrap_socket(self.connection, server_side=True)
                except (ssl.SSLError, OSError):
                    self.close_connection = True
                    return
                self.rfile = self.connection.makefile("rb")
                self.wfile = self.connection.makefile("wb", buffering=0)
                self.close_connection = False
                while not self.close_connection:
                    self.handle_one_request()

            def _json_body(self) -> Any:
                length = int(self.headers.get("Content-Length") or 0)
                try:
                    return json.loads(self.rfile.read(length) or b"{}")
                except ValueError:
                    return None

            def _control(self) -> bool:
                """`/_clock` and `/_portals/<domain>[/payments|/users]` straight to this port (not
                through a tunnel): what a person or a test plays (docs/development.md). True when it answered."""
                if self.tunnel is not None:
                    return False
                path = self.path.split("?")[0].rstrip("/")
                if path == "/_clock":
                    self._clock()
                    return True
                if not path.startswith("/_portals/"):
                    return False
                domain, _, action = path.removeprefix("/_portals/").lower().partition("/")
                if action:
                    self._portal_action(domain, action)
                    return True
                if self.command == "PUT":
                    changes = self._json_body()
                    if not isinstance(changes, dict) or not set(changes) <= set(Portal.SETTABLE):
                        self._answer(400, {"error": f"a JSON object of {', '.join(sorted(Portal.SETTABLE))}"})
                        return True
                    portal = fake.portals.get(domain)
                    if not _valid_changes(changes):
                        self._answer(
                            400,
                            {
                                "error": "access_token_expired is true or false; latency_ms and fail_rate "
                                "numbers (fail_rate 0 to 1); paid_until and trial_until ISO 8601 instants "
                                "with their offset, or null"
                            },
                        )
                        return True
                    if portal is None:  # a new portal of the app, so that a person can play two
                        portal = fake.portals[domain] = Portal(
                            changes.get("access_token") or f"access-{domain}",
                            fake.app_code,
                            member_id=str(changes.get("member_id", "")),
                        )
                    for name, value in changes.items():
                        setattr(portal, Portal.SETTABLE[name], value)
                elif self.command != "GET":
                    self._answer(405, {"error": "GET or PUT /_portals/<domain>"})
                    return True
                portal = fake.portals.get(domain)
                if portal is None:
                    self._answer(404, {"error": f"no portal {domain}"})
                else:
                    self._answer(200, {"domain": domain, **portal.control_view(fake.clock.time())})
                return True

            def _clock(self) -> None:
                """GET /_clock: the stack's time; POST /_clock: move it (and run what falls due)."""
                if self.command == "GET":
                    return self._answer(200, {"now": iso(fake.clock.time())})
                if self.command != "POST":
                    return self._answer(405, {"error": "GET or POST /_clock"})
                request = self._json_body()
                if fake.clock_answer is not None:
                    return self._answer(*fake.clock_answer(request if isinstance(request, dict) else {"": None}))
                seconds = request.get("advance_seconds") if isinstance(request, dict) else None
                if not isinstance(seconds, int | float) or isinstance(seconds, bool) or seconds < 0:
                    return self._answer(400, {"error": 'a JSON object: {"advance_seconds": N}'})
                fake.clock.move_to(fake.clock.time() + seconds)
                return self._answer(200, {"now": iso(fake.clock.time()), "ran": []})

            def _portal_action(self, domain: str, action: str) -> None:
                """POST /_portals/<domain>/payments and /_portals/<domain>/users."""
                portal = fake.portals.get(domain)
                if self.command != "POST" or action not in ("payments", "users"):
                    return self._answer(404, {"error": "POST /_portals/<domain>/payments or /users"})
                if portal is None:
                    return self._answer(404, {"error": f"no portal {domain}"})
                request = self._json_body()
                if action == "users":
                    if not isinstance(request, dict) or not isinstance(request.get("admin"), bool):
                        return self._answer(400, {"error": 'a JSON object: {"admin": true | false}'})
                    return self._answer(
                        200, {"domain": domain, **portal.user_pair(request["admin"], fake.clock.time())}
                    )
                payment = _payment(request)
                if payment is None:
                    return self._answer(
                        400,
                        {
                            "error": 'a JSON object: {"days": N (1 to 36,500), "event": "now" | "late" | "lost", '
                            '"late_seconds": S}'
                        },
                    )
                days, event, late = payment
                fake.payment(domain, days, event, late)
                return self._answer(200, {"domain": domain, **portal.control_view(fake.clock.time())})

            def do_PUT(self) -> None:  # noqa: N802
                if not self._control():
                    self._answer(405, {"error": "PUT is for /_portals/<domain>"})

            def do_POST(self) -> None:  # noqa: N802
                if self._control():
                    return
                length = int(self.headers.get("Content-Length") or 0)
                form = dict(parse_qsl(self.rfile.read(length).decode())) if length else {}
                host = (self.tunnel.host if self.tunnel else "").rsplit(":", 1)[0]
                if self.tunnel:
                    if self.tunnel.path:  # a second request on the same tunnel: a record of its own
                        self.tunnel = Request(host=self.tunnel.host)
                        fake.requests.append(self.tunnel)
                    self.tunnel.method, self.tunnel.path, self.tunnel.auth = "POST", self.path, form.get("auth", "")
                    self.tunnel.form = {key: value for key, value in form.items() if key != "auth"}
                if host in OAUTH_HOSTS and self.path.startswith("/oauth/token/"):
                    status, body = fake.refresh(dict(parse_qsl(self.path.partition("?")[2])))
                    if not status:  # the answer lost: the connection drops without a word
                        self.close_connection = True
                        return None
                    return self._answer(status, body)
                portal = fake.portals.get(host)
                method = self.path.split("?")[0].removeprefix("/rest/")
                if (
                    self.tunnel is None
                    or portal is None
                    or method not in ("app.info", "user.admin", "event.get", "event.bind", "batch")
                ):
                    return self._answer(404, {"error": "NOT_FOUND"})
                now = fake.clock.time()
                if portal.over_bucket(now) or not portal.arrived():
                    return self._answer(
                        503, {"error": "QUERY_LIMIT_EXCEEDED", "error_description": "Too many requests"}
                    )
                if portal.answer == "slow":
                    time.sleep(portal.slow_seconds)
                if portal.answer == "redirect":
                    return self._answer(302, {}, {"Location": portal.redirect_to})
                refused = "invalid_token" if portal.answer == "error" else portal.token_error(form.get("auth", ""), now)
                if refused:
                    return self._answer(
                        401, {"error": refused, "error_description": f"The access token is {refused[:-6]}"}
                    )
                portal.count("event.bind" if method == "batch" else method)
                if method == "app.info":
                    return self._answer(200, portal.app_info(now))
                if method == "user.admin":
                    return self._answer(200, {"result": form.get("auth", "") not in portal.ordinary_tokens})
                if portal.binds == "redirect":
                    return self._answer(302, {}, {"Location": portal.redirect_to})
                if portal.binds == "down":
                    return self._answer(
                        503, {"error": "QUERY_LIMIT_EXCEEDED", "error_description": "Too many requests"}
                    )
                if method == "event.get":
                    return self._answer(200, {"result": portal.bindings})
                if method == "event.bind":
                    error = portal.bind(form.get("event", ""), form.get("handler", ""))
                    return self._answer(400, error) if error else self._answer(200, {"result": True})
                return self._answer(200, portal.batch(form))

            do_GET = do_POST  # noqa: N815

            def _answer(self, status: int, body: dict, headers: dict[str, str] | None = None) -> None:
                data = json.dumps(body).encode()
                self.send_response(status)
                for name, value in {"Content-Type": "application/json", **(headers or {})}.items():
                    self.send_header(name, value)
                self.send_header("Content-Length", str(len(data)))
                try:
                    self.end_headers()
                    self.wfile.write(data)
                except OSError:  # the caller gave up waiting (the slow portal)
                    self.close_connection = True

            def log_message(self, *args: Any) -> None:
                pass

        self.httpd = ThreadingHTTPServer(("127.0.0.1", self.port), Handler)
        self.httpd.daemon_threads = True
        self.port = self.httpd.server_address[1]
        threading.Thread(target=self.httpd.serve_forever, name="fake-bitrix24", daemon=True).start()
        return self

    @property
    def environment(self) -> dict[str, str]:
        """What a handler's process needs to reach the fake instead of the internet."""
        proxy = f"http://127.0.0.1:{self.port}"
        return {"HTTPS_PROXY": proxy, "https_proxy": proxy, "SSL_CERT_FILE": str(self.ca_file)}

    def methods_called(self, host: str) -> list[str]:
        """The REST methods asked of one portal, in order."""
        return [
            request.path.removeprefix("/rest/")
            for request in self.requests
            if request.host.rsplit(":", 1)[0] == host and request.path
        ]

    def hosts_asked(self) -> list[str]:
        return [request.host for request in self.requests]

    def stop(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()
        self._directory.cleanup()
