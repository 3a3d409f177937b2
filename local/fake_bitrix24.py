"""A fake Bitrix24 cloud on 127.0.0.1: every portal's `app.info`, `event.get`, `event.bind` and
`batch`, and the OAuth server's token refresh (oauth.bitrix.info), over real TLS.

It is an HTTPS proxy (`HTTPS_PROXY=http://127.0.0.1:<port>`) that answers each CONNECT itself:
it terminates TLS with a certificate for the portal's name, signed by a CA of its own
(`SSL_CERT_FILE=<ca.pem>` makes the handlers trust it), and plays the portal. So the handlers
make the very request they make in AWS (https, host name, certificate check) without DNS or
internet, and the fake sees every host anybody tried to reach.
"""

import json
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
from urllib.parse import parse_qsl

OAUTH_HOST = "oauth.bitrix.info"
OAUTH_HOSTS = (OAUTH_HOST, "oauth.bitrix24.tech")  # Bitrix24's OAuth servers, every region
# Wildcards cover one label: "<portal>.bitrix24.com".
CERTIFICATE_SUFFIXES = (
    "bitrix24.com",
    "bitrix24.ru",
    "bitrix24.de",
    "bitrix24.eu",
    "bitrix24.by",
    "bitrix24.kz",
    "bitrix24.ua",
)


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
    oauth: str = "ok"  # how its OAuth server answers a refresh: ok | invalid_grant | payment_required
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
    request_times: list[float] = field(default_factory=list)  # monotonic, of its last 3 REST requests

    # What `PUT /_portals/<domain>` may set (docs/development.md): app.info's fields, how the portal
    # and its OAuth server answer.
    SETTABLE = {
        "STATUS": "status",
        "PAYMENT_EXPIRED": "payment_expired",
        "DAYS": "days",
        "INSTALLED": "installed",
        "LICENSE": "license",
        "oauth": "oauth",
        "member_id": "member_id",
        "access_token": "access_token",
        "access_token_expired": "access_token_expired",
        "latency_ms": "latency_ms",
        "fail_rate": "fail_rate",
    }

    @property
    def access_token_expired(self) -> bool:
        return self.access_token in self.expired_tokens

    @access_token_expired.setter
    def access_token_expired(self, expired: bool) -> None:
        if expired:
            self.expired_tokens |= {self.access_token, *self.earlier_tokens}
        else:
            self.expired_tokens.clear()

    def token_error(self, token: str) -> str | None:
        """How it answers a request made with `token`: None (taken), expired_token or invalid_token."""
        if token in self.expired_tokens:
            return "expired_token"
        return None if token == self.access_token or token in self.earlier_tokens else "invalid_token"

    def issue(self) -> str:
        """A refresh's new access token; the old one stays valid (its hour is not up)."""
        self.earlier_tokens.add(self.access_token)
        self.access_token = f"access-{secrets.token_hex(12)}"
        return self.access_token

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
        if self.fail_rate and random.random() < float(self.fail_rate):
            self.count("failed")
            return False
        return True

    def count(self, call: str) -> None:
        self.calls[call] = self.calls.get(call, 0) + 1

    def control_view(self) -> dict[str, Any]:
        return {
            **{name: getattr(self, attribute) for name, attribute in self.SETTABLE.items()},
            "calls": dict(self.calls),
            "bindings": list(self.bindings),
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

    def app_info(self) -> dict[str, Any]:
        return {
            "result": {
                "ID": "7",
                "CODE": self.code,
                "VERSION": 1,
                "STATUS": self.status,
                "INSTALLED": self.installed,
                "PAYMENT_EXPIRED": self.payment_expired,
                "DAYS": self.days,
                "LICENSE": self.license,
            }
        }


def _valid_changes(changes: dict[str, Any]) -> bool:
    numbers = [changes[name] for name in ("latency_ms", "fail_rate") if name in changes]
    return (
        isinstance(changes.get("access_token_expired", False), bool)
        and all(isinstance(n, int | float) and not isinstance(n, bool) and n >= 0 for n in numbers)
        and 0 <= changes.get("fail_rate", 0) <= 1
    )


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
    names = [x509.DNSName(f"*.{suffix}") for suffix in CERTIFICATE_SUFFIXES] + [
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

    def refresh(self, query: dict[str, str]) -> tuple[int, dict[str, Any]]:
        """oauth.bitrix.info/oauth/token/?grant_type=refresh_token: whose portal the token is."""
        if (query.get("client_id"), query.get("client_secret")) != self.app_credentials:
            return 401, {"error": "invalid_client", "error_description": "Invalid client credentials"}
        for domain, portal in list(self.portals.items()):
            if query.get("grant_type") == "refresh_token" and portal.refresh_token == query.get("refresh_token"):
                if not portal.arrived(rest=False):
                    return 503, {"error": "QUERY_LIMIT_EXCEEDED", "error_description": "Too many requests"}
                portal.count("refresh")
                if portal.oauth == "invalid_grant":
                    return 400, {"error": "invalid_grant", "error_description": "The refresh token is revoked"}
                if portal.oauth == "payment_required":
                    return 402, {"error": "PAYMENT_REQUIRED", "error_description": "The application is not paid"}
                portal.refresh_token = f"refresh-{secrets.token_hex(12)}"  # a refresh token works once
                return 200, {
                    "access_token": portal.issue(),
                    "refresh_token": portal.refresh_token,
                    "expires_in": 3600,
                    "scope": "app",
                    "domain": OAUTH_HOST,
                    "server_endpoint": f"https://{OAUTH_HOST}/rest/",
                    "status": "L",
                    "client_endpoint": f"https://{domain}/rest/",
                    "member_id": portal.member_id,
                }
        return 400, {"error": "invalid_grant", "error_description": "Invalid refresh token"}

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

            def _control(self) -> bool:
                """`GET|PUT /_portals/<domain>` straight to this port (not through a tunnel): what a
                person or a test plays (docs/development.md). True when it answered."""
                if self.tunnel is not None or not self.path.startswith("/_portals/"):
                    return False
                domain = self.path.removeprefix("/_portals/").split("?")[0].strip("/").lower()
                if self.command == "PUT":
                    length = int(self.headers.get("Content-Length") or 0)
                    try:
                        changes = json.loads(self.rfile.read(length) or b"{}")
                        assert isinstance(changes, dict) and set(changes) <= set(Portal.SETTABLE)
                    except (ValueError, AssertionError):
                        self._answer(400, {"error": f"a JSON object of {', '.join(sorted(Portal.SETTABLE))}"})
                        return True
                    portal = fake.portals.get(domain)
                    if not _valid_changes(changes):
                        self._answer(
                            400,
                            {
                                "error": "access_token_expired is true or false; latency_ms and fail_rate "
                                "numbers (fail_rate 0 to 1)"
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
                portal = fake.portals.get(domain)
                if portal is None:
                    self._answer(404, {"error": f"no portal {domain}"})
                else:
                    self._answer(200, {"domain": domain, **portal.control_view()})
                return True

            def do_PUT(self) -> None:  # noqa: N802
                if not self._control():
                    self._answer(405, {"error": "PUT is for /_portals/<domain>"})

            def do_POST(self) -> None:  # noqa: N802
                if self.command == "GET" and self._control():
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
                    return self._answer(*fake.refresh(dict(parse_qsl(self.path.partition("?")[2]))))
                portal = fake.portals.get(host)
                method = self.path.split("?")[0].removeprefix("/rest/")
                if (
                    self.tunnel is None
                    or portal is None
                    or method not in ("app.info", "event.get", "event.bind", "batch")
                ):
                    return self._answer(404, {"error": "NOT_FOUND"})
                if not portal.arrived():
                    return self._answer(
                        503, {"error": "QUERY_LIMIT_EXCEEDED", "error_description": "Too many requests"}
                    )
                if portal.answer == "slow":
                    time.sleep(portal.slow_seconds)
                if portal.answer == "redirect":
                    return self._answer(302, {}, {"Location": portal.redirect_to})
                refused = "invalid_token" if portal.answer == "error" else portal.token_error(form.get("auth", ""))
                if refused:
                    return self._answer(
                        401, {"error": refused, "error_description": f"The access token is {refused[:-6]}"}
                    )
                portal.count("event.bind" if method == "batch" else method)
                if method == "app.info":
                    return self._answer(200, portal.app_info())
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
