"""`make simulate`: a simulated year of portals on the local stack, checked hour by hour against
the fake Bitrix24's truth.

Portals drawn from SEED install in every region, run their trial, buy monthly or yearly
subscriptions paid on time, late, or not any more; their ONAPPPAYMENT arrives at once, late (20 %)
or never (2 %); some uninstall (with or without their event) and some of those reinstall. A third
have a billing account (local/billing_system.py) whose monthly invoices are paid on time, late
(overdue past their blocking day, sometimes) or never (the account blocked), its notifications
delivered at once or late (10 %, up to 6 h). With
FAULTS on, Bitrix24 answers 2 % of requests 503 and 2 % slowly (5 to 15 s), loses 0.1 % of
refresh answers after rotating the pair, DynamoDB throttles 1 % of requests and PutEvents refuses
1 % of its calls. The test clock (local/clock.py) runs every scheduled function at its instants.

Every simulated hour each portal's entitlement (EntitlementsTable) is held against what the
truth says it should be, and the table printed at the end says how often, why and for how long
it was wrong, what it cost Bitrix24 (refreshes, REST requests) and AWS, and whether any install,
token pair or event was lost. Settings: PORTALS (1,000), DAYS (365), SEED (1), FAULTS (1), SHARDS
(one per core: each shard a process with a stack of its own, its figures merged).
"""

import heapq
import json
import os
import random
import statistics
import sys
import time
import warnings
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from typing import Any

from local.billing_system import Account, Notification
from local.fake_bitrix24 import CERTIFICATE_SUFFIXES
from local.faults import outside_the_product

DAY, HOUR = 86400, 3600
GRACE = 3 * DAY  # EntitlementGraceDays' default
# Regions: a portal's domain suffix (each is one of Bitrix24's cloud zones the fake holds a certificate for).
REGIONS = CERTIFICATE_SUFFIXES  # every zone of Bitrix24's cloud

# An answer, coarsely: the app granted (paid, trial), granted in a grace, or refused.
GRANTED, GRACE_CLASS, REFUSED = "granted", "in grace", "refused"
# Why an hour's answer differs from the truth, where the docs (docs/performance.md) bound it.
END_TO_THE_DAY = "a licence's end known to the whole day (DAYS)"
PAYMENT_LATE = "a payment's ONAPPPAYMENT late"
RENEWAL_LOST = "a renewal's ONAPPPAYMENT lost (found after the end, by the grace's last check at the latest)"
GRACE_PAYMENT_LOST = "a payment in the grace whose ONAPPPAYMENT was lost (found at the grace's last check)"
PAYMENT_LOST = "a payment's ONAPPPAYMENT lost, after the grace (found at the keep-alive)"
UNINSTALL_LOST = "an uninstall whose event was lost (found at the keep-alive)"
INSTALL_PARKED = (
    "an install (or reinstall) its portal or OAuth server did not answer at once, replayed or vouched later"
)
# Bitrix24 rotated the install's refresh token and its answer never came: no token is left to vouch
# with, so the install waits for the portal's next install or update (docs/licence-sync.md).
INSTALL_ANSWER_LOST = "an install whose vouching answer Bitrix24 lost (until the portal's next install or update)"
BILLING_LATE = "a billing notification delivered late (or parked and replayed)"
UNEXPLAINED = "unexplained"


@dataclass
class Life:
    """One portal's year, drawn from the seed."""

    domain: str
    install_at: float
    trial_days: int
    period_days: int | None  # 30 (monthly), 365 (yearly), None: never buys
    pays: str  # on_time | late | stops
    periods: int  # how many periods it pays for when it `stops`
    uninstall_at: float | None
    uninstall_delivered: bool
    reinstall_at: float | None


def draw_lives(rng: random.Random, portals: int, start: float, days: int) -> list[Life]:
    lives = []
    for number in range(portals):
        install_at = start + rng.uniform(0, min(days, 60)) * DAY
        uninstall_at = install_at + rng.uniform(10, days) * DAY if rng.random() < 0.15 else None
        lives.append(
            Life(
                domain=f"sim{number:05d}-{rng.getrandbits(24):06x}.{rng.choice(REGIONS)}",
                install_at=install_at,
                trial_days=rng.choice((14, 30)),
                period_days=rng.choices((30, 365, None), weights=(60, 20, 20))[0],
                pays=rng.choices(("on_time", "late", "stops"), weights=(70, 15, 15))[0],
                periods=rng.randint(1, 4),
                uninstall_at=uninstall_at,
                uninstall_delivered=rng.random() < 0.9,
                reinstall_at=uninstall_at + rng.uniform(1, 30) * DAY if uninstall_at and rng.random() < 0.5 else None,
            )
        )
    return lives


@dataclass
class Portal:
    """What the simulation remembers of a portal: its life, and what happened to it."""

    life: Life
    member_id: str = ""
    paid: int = 0
    # (when it is due or was paid, "late" | "lost", paid after its licence had ended)
    undelivered: list[tuple[float, str, bool]] = field(default_factory=list)
    uninstall_lost: bool = False
    parked: bool = False  # an install (or reinstall) answered other than 200: parked for a replay
    installed_at: float = 0.0  # its last install or reinstall, on the clock
    answered: list[int] = field(default_factory=list)  # each install's and reinstall's status
    vouching_lost: bool = False  # Bitrix24 lost the answer to its last install's vouching refresh
    wrong_since: float | None = None
    wrong_cause: str = ""
    states: list[tuple[bool | None, str]] = field(default_factory=list)  # sampled answers, each change once
    account: Account | None = None  # its billing account, if it has one


ACCOUNT_SHARE = 1 / 3  # of portals with a billing account coded with their member_id


class Simulation:
    def __init__(
        self, portals: int, days: int, seed: int, faults: bool, log: Any = print, shard: tuple[int, int] = (0, 1)
    ) -> None:
        self.count, self.days, self.seed, self.faults, self.log = portals, days, seed, faults, log
        self.shard = shard  # (this one, of how many): it plays every n-th portal the seed draws
        self.rng = random.Random(seed)
        self.wrong_hours: Counter[str] = Counter()
        self.lags: dict[str, list[float]] = defaultdict(list)
        self.install_answers: Counter[int] = Counter()
        self.doubt_hours: Counter[str] = Counter()
        self.unreachable_installed: set[str] = set()
        self.unexplained: list[str] = []  # the first few, for whoever mends them
        # The billing system's draws apart from the portals', so a seed's portals live the same lives.
        self.billing_rng = random.Random(f"billing-{seed}")
        self.billing_answers: Counter[int] = Counter()

    # --- the year -----------------------------------------------------------------------------

    def run(self) -> dict[str, Any]:
        from local.faults import AwsFaults
        from local.schedules import clock_runner
        from local.server import LocalApi
        from local.stack import LocalStack
        from local.streams import StreamPoller

        random.seed(f"{self.seed}-{self.shard[0]}")  # the fake's own draws (its faults)
        started = time.monotonic()
        with LocalStack() as stack:
            stack.export_to_process()
            os.environ.update(
                {
                    "POWERTOOLS_LOG_LEVEL": "CRITICAL",
                    "BITRIX24_REST_LOG_LEVEL": "CRITICAL",
                    "POWERTOOLS_METRICS_DISABLED": "true",
                }
            )
            warnings.filterwarnings("ignore", message="No application metrics to publish")
            from billing_webhooks.observability import metrics

            metrics.add_metric = lambda **_: None  # type: ignore[method-assign]  # Lambda ships them: not printed here
            self.aws = AwsFaults(self.rng, 0.01 if self.faults else 0, 0.01 if self.faults else 0).install()
            names = ("AccountProjectorFunction", "InstallationChangesFunction", "EntitlementEventsFunction")
            pollers = [StreamPoller(name, stack.endpoints, log=lambda line: None).start() for name in names]
            api = LocalApi(0, log=None).start()
            try:
                self.stack, self.fake = stack, stack.bitrix24
                self.fake.deliver_to = api.url
                self.api_url = api.url
                self.runner = clock_runner(stack.clock, stack.bitrix24, pollers)
                self._play()
                figures = self._figures(time.monotonic() - started)
            finally:
                for poller in pollers:
                    poller.stop()
                api.stop()
        return figures

    def _play(self) -> None:
        start = self.stack.clock.time()
        self.start = start
        lives = draw_lives(self.rng, self.count, start, self.days)
        mine, shards = self.shard
        if shards > 1:  # every shard draws the same lives; the rest of its draws are its own
            lives = lives[mine::shards]
            self.rng, self.billing_rng = (
                random.Random(f"{self.seed}-{mine}"),
                random.Random(f"billing-{self.seed}-{mine}"),
            )
        self.portals = {life.domain: Portal(life) for life in lives}
        self.by_member: dict[str, Portal] = {}
        self.actions: list[tuple[float, int, str, str, tuple[Any, ...]]] = []
        self.sequence = 0
        for portal in self.portals.values():
            self._at(portal.life.install_at, "install", portal.life.domain)
            if portal.life.uninstall_at:
                self._at(portal.life.uninstall_at, "uninstall", portal.life.domain)
            if portal.life.reinstall_at:
                self._at(portal.life.reinstall_at, "reinstall", portal.life.domain)
        for hour in range(1, self.days * 24 + 1):
            boundary = start + hour * HOUR
            while self.actions and self.actions[0][0] <= boundary:
                at, _, kind, domain, arguments = heapq.heappop(self.actions)
                self.runner.advance(at)
                getattr(self, f"_{kind}")(self.portals[domain], at, *arguments)
            self.runner.advance(boundary)
            self._hold(boundary)
            if hour % (24 * 30) == 0:
                self.log(f"  day {hour // 24}: {sum(self.wrong_hours.values())} portal-hours wrong so far")

    def _at(self, at: float, kind: str, domain: str, *arguments: Any) -> None:
        self.sequence += 1
        heapq.heappush(self.actions, (at, self.sequence, kind, domain, arguments))

    # --- what Bitrix24 and the portals do ------------------------------------------------------

    def _install(self, portal: Portal, at: float) -> None:
        from local import play

        made = play.new_portal(self.fake, portal.life.domain, trial_until=at + portal.life.trial_days * DAY)
        if self.faults:
            made.fail_rate, made.slow_rate, made.lost_rate = 0.02, 0.02, 0.001
        portal.member_id = made.member_id
        self.by_member[made.member_id] = portal
        lost = made.calls.get("lost", 0)
        self._installed(portal, play.post_lifecycle(self.api_url, self.fake, portal.life.domain), lost)
        if portal.life.period_days:
            self._next_payment(portal, at + portal.life.trial_days * DAY)
        if self.billing_rng.random() < ACCOUNT_SHARE:
            portal.account = Account(10_000 + len(self.by_member), made.member_id, self.billing_rng)
            self._at(at + HOUR, "account_opened", portal.life.domain)

    def _next_payment(self, portal: Portal, ends: float) -> None:
        if portal.life.pays == "stops" and portal.paid >= portal.life.periods:
            return
        if portal.life.pays == "late":
            self._at(ends + self.rng.uniform(0.2, 5) * DAY, "pay", portal.life.domain)
        else:
            self._at(ends - self.rng.uniform(0.5, 3) * DAY, "pay", portal.life.domain)

    def _pay(self, portal: Portal, at: float) -> None:
        fake_portal = self.fake.portals[portal.life.domain]
        if not fake_portal.installed:
            return  # an uninstalled portal pays for nothing
        draw = self.rng.random()
        event = "lost" if draw < 0.02 else "late" if draw < 0.22 else "now"
        late = self.rng.uniform(60, 6 * HOUR)
        ended = fake_portal.paid_until is None or fake_portal.paid_until <= at
        if event != "now":
            portal.undelivered.append((at, event, ended) if event == "lost" else (at + late, event, ended))
        self.fake.payment(portal.life.domain, int(portal.life.period_days or 30), event, late)
        portal.paid += 1
        self._next_payment(portal, float(fake_portal.paid_until or at))

    def _uninstall(self, portal: Portal, at: float) -> None:
        from local import play

        if not self.fake.portals[portal.life.domain].installed:
            return
        portal.uninstall_lost = not portal.life.uninstall_delivered
        play.uninstall(self.api_url, self.fake, portal.life.domain, delivered=portal.life.uninstall_delivered)

    # --- what the billing system does (local/billing_system.py) --------------------------------

    def _account_opened(self, portal: Portal, at: float) -> None:
        assert portal.account is not None
        self._post_billing(portal, at, portal.account.opened(at))
        self._at(at + DAY, "invoice_issued", portal.life.domain)

    def _invoice_issued(self, portal: Portal, at: float) -> None:
        account = portal.account
        assert account is not None
        if account.state(at) == "Blocked":
            return  # a blocked account is billed no more
        invoice, pays, sent = account.issue(at)
        self._post_billing(portal, at, sent)
        if pays == "on_time":
            self._at(at + self.billing_rng.uniform(0.1, 4) * DAY, "invoice_paid", portal.life.domain, invoice)
        else:
            self._at(at + 5 * DAY, "invoice_unpaid", portal.life.domain, invoice, at, pays)
        self._at(at + 30 * DAY, "invoice_issued", portal.life.domain)

    def _invoice_unpaid(self, portal: Portal, at: float, invoice: int, issued_at: float, pays: str) -> None:
        account = portal.account
        assert account is not None
        self._post_billing(portal, at, account.unpaid_notice(at, invoice, issued_at))
        if pays == "late":  # before its blocking day, or after it
            self._at(at + self.billing_rng.uniform(1, 15) * DAY, "invoice_paid", portal.life.domain, invoice)
        else:
            self._at(account.blocking_day(invoice) + HOUR, "account_blocked", portal.life.domain)

    def _invoice_paid(self, portal: Portal, at: float, invoice: int) -> None:
        assert portal.account is not None
        self._post_billing(portal, at, portal.account.pay(at, invoice))

    def _account_blocked(self, portal: Portal, at: float) -> None:
        assert portal.account is not None
        self._post_billing(portal, at, portal.account.block(at))

    def _post_billing(self, portal: Portal, at: float, notifications: list[Notification]) -> None:
        for notification in notifications:
            if notification.delivered_at > at:
                self._at(notification.delivered_at, "billing_delivered", portal.life.domain, notification)
            else:
                self._billing_delivered(portal, at, notification)

    def _billing_delivered(self, portal: Portal, at: float, notification: Notification) -> None:
        import requests

        from local.traffic import BILLING_HEADERS, route_paths

        if not hasattr(self, "_billing_paths"):
            self._billing_paths = route_paths()
        answer = requests.post(
            f"{self.api_url}{self._billing_paths[notification.kind]}",
            data=json.dumps(notification.body),
            headers=BILLING_HEADERS,
            timeout=60,
        )
        self.billing_answers[answer.status_code] += 1
        if answer.status_code != 200:  # parked: the Replay job's next run (every 5 minutes) brings it
            notification.delivered_at = at + HOUR

    def _reinstall(self, portal: Portal, at: float) -> None:
        from local import play

        portal.uninstall_lost = False
        lost = self.fake.portals[portal.life.domain].calls.get("lost", 0)
        self._installed(portal, play.post_lifecycle(self.api_url, self.fake, portal.life.domain, reinstall=True), lost)

    def _installed(self, portal: Portal, status: int, lost_before: int) -> None:
        portal.installed_at = self.stack.clock.time()
        portal.vouching_lost = self.fake.portals[portal.life.domain].calls.get("lost", 0) > lost_before
        self.install_answers[status] += 1
        portal.answered.append(status)
        portal.parked = portal.parked or status != 200

    # --- holding the answer against the truth --------------------------------------------------

    def _answers(self) -> dict[str, dict[str, Any]]:
        """Every portal's entitlement, read as the read API reads it (our own client: not counted)."""
        if not hasattr(self, "_reader"):
            import boto3

            self._reader = boto3.session.Session().client(
                "dynamodb", endpoint_url=self.stack.endpoints["AWS_ENDPOINT_URL_DYNAMODB"], region_name="us-east-1"
            )
            self._installations: dict[str, dict[str, Any]] = {}
        found: dict[str, dict[str, Any]] = {}
        for page in self._reader.get_paginator("scan").paginate(TableName="EntitlementsTable"):
            for item in page["Items"]:
                answer = item.get("entitlement", {}).get("M", {})
                found[item["member_id"]["S"]] = {
                    "entitled": answer.get("entitled", {}).get("BOOL"),
                    "reason": answer.get("reason", {}).get("S", ""),
                }
        return found

    def _expected(self, portal: Portal, now: float) -> str:
        """What the answer should be, by the truth: granted (paid or in trial), grace (ended less
        than the grace ago) or refused (ended before that, uninstalled, or its billing account
        blocked or overdue)."""
        truth = self.fake.portals[portal.life.domain]
        if not truth.installed or (portal.account is not None and portal.account.refuses(now)):
            return REFUSED
        if truth.truth(now)["paid"] or truth.truth(now)["trial"]:
            return GRANTED
        until = truth.paid_until if truth.paid_until is not None else truth.trial_until
        return GRACE_CLASS if until is not None and now < until + GRACE else REFUSED

    def _cause(self, portal: Portal, expected: str, ours: str, now: float, reason: str) -> str:
        truth = self.fake.portals[portal.life.domain]
        until = truth.paid_until if truth.paid_until is not None else truth.trial_until
        if not truth.installed:
            return UNINSTALL_LOST if portal.uninstall_lost else UNEXPLAINED
        # Parked and replayed, or kept unvouched while the OAuth server was down: vouched by the sync.
        if reason.startswith("not_vouched") and portal.vouching_lost:
            return INSTALL_ANSWER_LOST
        if reason.startswith("not_vouched") or (portal.parked and reason == "none"):
            return INSTALL_PARKED
        if reason == "not_installed" and portal.answered and portal.answered[-1] != 200:
            return INSTALL_PARKED  # a reinstall parked: its uninstall's answer stands until the replay
        if portal.account is not None and portal.account.late_at(now):
            return BILLING_LATE
        if until is not None and (expected, ours) in ((GRACE_CLASS, GRANTED), (REFUSED, GRACE_CLASS)):
            return END_TO_THE_DAY if now < until + (GRACE if ours == GRACE_CLASS else 0) + DAY else UNEXPLAINED
        if expected == GRANTED and any(kind == "late" and now <= when + HOUR for when, kind, _ in portal.undelivered):
            return PAYMENT_LATE
        lost = [ended for _, kind, ended in portal.undelivered if kind == "lost"]
        if expected == GRANTED and ours == GRACE_CLASS and False in lost:
            return RENEWAL_LOST
        if expected == GRANTED and ours == GRACE_CLASS and True in lost:
            return GRACE_PAYMENT_LOST
        if expected == GRANTED and ours == REFUSED and lost:
            return PAYMENT_LOST
        return UNEXPLAINED

    def _hold(self, now: float) -> None:
        writes = self.runner.writes() if self.runner.writes else None
        if writes is None or writes != getattr(self, "_answers_at", None):  # nothing written: the same answers
            self._held, self._answers_at = self._answers(), writes
        answers = self._held
        for member_id, portal in self.by_member.items():
            answer = answers.get(member_id, {"entitled": None, "reason": "none"})
            state = (answer["entitled"], answer["reason"])
            if not portal.states or portal.states[-1] != state:
                portal.states.append(state)
            expected = self._expected(portal, now)
            ours = (
                REFUSED
                if not answer["entitled"]
                else GRACE_CLASS
                if answer["reason"].endswith("_in_grace")
                else GRANTED
            )
            if ours == expected:
                if portal.wrong_since is not None:
                    self.lags[portal.wrong_cause].append(now - portal.wrong_since)
                    portal.wrong_since = None
                continue
            cause = self._cause(portal, expected, ours, now, answer["reason"])
            if cause == UNEXPLAINED and len(self.unexplained) < 10:
                truth = self.fake.portals[portal.life.domain].truth(now)
                billing = [] if portal.account is None else portal.account.told(now, self.start)
                self.unexplained.append(
                    f"hour {round((now - self.start) / HOUR)} {portal.life.domain}: {answer} {truth} billing {billing}"
                    f" installs answered {portal.answered}"
                )
            if portal.wrong_since is not None and portal.wrong_cause != cause:
                # The truth moved again while we were wrong (a payment lost after an end known to
                # the day): the first cause's lag ends here, the new one's starts.
                self.lags[portal.wrong_cause].append(now - portal.wrong_since)
                portal.wrong_since = None
            if portal.wrong_since is None:
                portal.wrong_since, portal.wrong_cause = now - HOUR, cause
            self.wrong_hours[cause] += 1

    # --- the figures ---------------------------------------------------------------------------

    def _figures(self, seconds: float) -> dict[str, Any]:
        now = self.stack.clock.time()
        for portal in self.by_member.values():  # still wrong at the end: its lag so far
            if portal.wrong_since is not None:
                self.lags[portal.wrong_cause].append(now - portal.wrong_since)
        fake, months = self.fake, self.days / 30
        refreshes_30 = [_most_in_30_days(fake.portals[p.life.domain].refreshes_by_day) for p in self.by_member.values()]
        renewals_30 = [_most_in_30_days(_renewals_by_day(fake.portals[p.life.domain])) for p in self.by_member.values()]
        once_30 = [  # every refresh of a portal installed once, its install's vouching included
            _most_in_30_days(fake.portals[p.life.domain].refreshes_by_day)
            for p in self.by_member.values()
            if len(p.answered) == 1
        ]
        rest = sum(
            sum(fake.portals[p.life.domain].calls.get(name, 0) for name in ("app.info", "event.get", "event.bind"))
            for p in self.by_member.values()
        )
        over_bucket = sum(fake.portals[p.life.domain].calls.get("over_bucket", 0) for p in self.by_member.values())
        kept = self._kept()
        events = self._events()
        return {
            "portals": len(self.by_member),
            "days": self.days,
            "seed": self.seed,
            "faults": self.faults,
            "seconds": round(seconds),
            "portal_hours": len(self.by_member) * self.days * 24,
            "wrong_hours": dict(self.wrong_hours),
            "lag_hours": _lag_hours(self.lags),
            "lags": dict(self.lags),  # seconds: what shards merge (merge_shards)
            "refreshes_per_portal_per_30_days": _spread(refreshes_30),
            "renewals_per_portal_per_30_days": _spread(renewals_30),
            "refreshes_installed_once_per_30_days": {"portals": len(once_30), **_spread(once_30)},
            "rest_requests_per_portal_per_day": round(rest / max(len(self.by_member) * self.days, 1), 3),
            "requests_over_the_bucket": over_bucket,
            "aws_requests_per_portal_per_month": round(
                sum(self.aws.requests.values()) / max(len(self.by_member) * months, 1), 1
            ),
            "aws_faults": dict(self.aws.faults),
            "bitrix24_faults": {
                name: sum(fake.portals[p.life.domain].calls.get(name, 0) for p in self.by_member.values())
                for name in ("failed", "slow", "lost")
            },
            "install_answers": {str(status): count for status, count in self.install_answers.items()},
            "billing_accounts": sum(1 for p in self.by_member.values() if p.account is not None),
            "billing_answers": {str(status): count for status, count in self.billing_answers.items()},
            "unexplained_examples": self.unexplained,
            **self._most_refreshed(),
            **kept,
            **events,
        }

    def _most_refreshed(self) -> dict[str, Any]:
        """The most refreshed portal, by what its budget counts (every refresh of a portal installed
        once, the renewals of one reinstalled): its refreshes by day, and its life. What a budget
        broken asks first."""
        portals = self.fake.portals

        def budgeted(portal: Portal) -> dict[str, int]:
            counted = portals[portal.life.domain]
            return counted.refreshes_by_day if len(portal.answered) == 1 else _renewals_by_day(counted)

        worst = max(self.by_member.values(), key=lambda portal: _most_in_30_days(budgeted(portal)), default=None)
        if worst is None:
            return {"most_refreshed": {}, "most_refreshed_life": {}}

        def day(at: float | None) -> str | None:
            return None if at is None else time.strftime("%Y-%m-%dT%H:%M", time.gmtime(at))

        life = worst.life
        return {
            "most_refreshed": budgeted(worst),
            "most_refreshed_life": {
                "refreshes_by_day": portals[life.domain].refreshes_by_day,
                "vouchings_by_day": portals[life.domain].vouchings_by_day,
                "domain": life.domain,
                "install_at": day(life.install_at),
                "trial_days": life.trial_days,
                "period_days": life.period_days,
                "pays": life.pays,
                "paid": worst.paid,
                "undelivered": [(day(at), fate, after_end) for at, fate, after_end in worst.undelivered],
                "uninstall_at": day(life.uninstall_at),
                "uninstall_delivered": life.uninstall_delivered,
                "reinstall_at": day(life.reinstall_at),
                "install_answers": worst.answered,
                "bitrix24_calls": dict(portals[life.domain].calls),
            },
        }

    @outside_the_product
    def _kept(self) -> dict[str, Any]:
        """Installs and pairs lost: what the tables hold against the truth, at the end."""
        from billing_webhooks.data import installations, tokens
        from billing_webhooks.models.base import from_utc_timestamp

        lost_installs, lost_pairs, in_doubt, unreachable, answer_lost = [], [], [], [], []
        doubt_hours: list[float] = []  # how long each pair in doubt at the end has been so
        for member_id, portal in self.by_member.items():
            truth = self.fake.portals[portal.life.domain]
            kept = installations.get(member_id) or {}
            pair = tokens.get(member_id) or {}
            settling = self.stack.clock.time() - portal.installed_at < 3 * HOUR  # still being vouched for
            if truth.installed and portal.vouching_lost and kept.get("vouched") is not True:
                answer_lost.append(portal.life.domain)
            elif (
                truth.installed
                and not settling
                and (kept.get("status") != "installed" or kept.get("vouched") is not True)
            ):
                lost_installs.append(
                    f"{portal.life.domain} (answered {portal.answered}; kept {kept.get('status')},"
                    f" vouched {kept.get('vouched')}, reason {portal.states[-1:]}; Bitrix24 saw {truth.calls};"
                    f" pair {sorted(key for key in pair if key not in ('sealed', 'data_key', 'pending_sealed'))};"
                    f" sync {kept.get('sync')})"
                )
            because = kept.get("unreachable_because")
            if truth.installed and because == "tokens_in_doubt":
                in_doubt.append(portal.life.domain)
                since = from_utc_timestamp(str(kept.get("unreachable_since"))).timestamp()
                doubt_hours.append(round((self.stack.clock.time() - since) / HOUR, 1))
            elif truth.installed and because:
                unreachable.append(portal.life.domain)
                if pair.get("refused"):
                    lost_pairs.append(portal.life.domain)
        return {
            "installs_lost": len(lost_installs),
            "installs_unvouched_after_a_lost_answer": len(answer_lost),
            "pairs_lost_to_a_slow_answer": len(lost_pairs),
            "pairs_in_doubt_at_the_end": len(in_doubt),
            "pairs_in_doubt_hours": sorted(doubt_hours),
            "unreachable_but_installed": len(unreachable),
            "lost_examples": (lost_installs + lost_pairs + unreachable)[:5],
        }

    def _events(self) -> dict[str, Any]:
        """EntitlementChanged events against the answer's changes: each sampled change told, in
        order, and none told twice."""
        import boto3

        sqs = boto3.session.Session().client(
            "sqs", endpoint_url=self.stack.endpoints["AWS_ENDPOINT_URL_SQS"], region_name="us-east-1"
        )
        url = sqs.get_queue_url(QueueName="local-events")["QueueUrl"]
        told: dict[str, list[tuple[Any, ...]]] = defaultdict(list)
        ids: Counter[str] = Counter()
        while batch := sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10).get("Messages", []):
            for message in batch:
                event = json.loads(message["Body"])
                if event["detail-type"] == "EntitlementChanged":
                    detail = event["detail"]
                    ids[event["id"]] += 1
                    told[detail["member_id"]].append(
                        (
                            int(detail["sequence"]),
                            detail["entitled"],
                            detail["reason"],
                            detail["until"],
                            detail["grace_until"],
                        )
                    )
            sqs.delete_message_batch(
                QueueUrl=url, Entries=[{"Id": str(n), "ReceiptHandle": m["ReceiptHandle"]} for n, m in enumerate(batch)]
            )
        missing = extra = 0
        self.event_examples: list[str] = []
        for member_id, portal in self.by_member.items():
            events = sorted(set(told.get(member_id, [])))
            repeated = len(told.get(member_id, [])) - len(events)
            repeated += sum(1 for before, after in zip(events, events[1:], strict=False) if not _tells(before, after))
            if repeated:
                extra += repeated
                self.event_examples.append(f"{portal.life.domain}: {events} sampled {portal.states}")
            changes = [state for state in portal.states if state[0] is not None]
            position = 0
            for state in changes:  # each sampled state was told, in order
                while position < len(events) and events[position][1:3] != state:
                    position += 1
                if position == len(events):
                    missing += 1
                    self.event_examples.append(f"{portal.life.domain}: {state} not told; told {events}")
                    position = 0
        return {
            "events_missing": missing,
            "events_extra": extra,
            "events_told": sum(len(v) for v in told.values()),
            "event_examples": self.event_examples[:5],
        }


def _lag_hours(lags: dict[str, list[float]]) -> dict[str, dict[str, float]]:
    return {
        cause: {
            "p50": round(statistics.median(values) / HOUR, 1),
            "p99": round(_percentile(values, 0.99) / HOUR, 1),
            "max": round(max(values) / HOUR, 1),
        }
        for cause, values in lags.items()
        if values
    }


def merge_shards(shards: list[dict[str, Any]]) -> dict[str, Any]:
    """One year's figures from its shards' (each played every n-th portal on a stack of its own):
    counts added, per-portal rates weighed by portals, lags pooled before their percentiles."""
    portals = sum(figures["portals"] for figures in shards)

    def added(key: str) -> dict[str, int]:
        total: Counter[str] = Counter()
        for figures in shards:
            total.update(figures[key])
        return dict(total)

    def weighed(key: str, *path: str, digits: int) -> float:
        def value(figures: dict[str, Any]) -> float:
            found = figures[key]
            for name in path:
                found = found[name]
            return float(found) * figures["portals"]

        return round(sum(value(figures) for figures in shards) / max(portals, 1), digits)

    lags: dict[str, list[float]] = defaultdict(list)
    for figures in shards:
        for cause, values in figures["lags"].items():
            lags[cause] += values
    first = shards[0]
    installed_once = [figures["refreshes_installed_once_per_30_days"] for figures in shards]
    once_portals = sum(once["portals"] for once in installed_once)
    return {
        "portals": portals,
        "days": first["days"],
        "seed": first["seed"],
        "faults": first["faults"],
        "shards": len(shards),
        "seconds": max(figures["seconds"] for figures in shards),
        "portal_hours": sum(figures["portal_hours"] for figures in shards),
        "wrong_hours": added("wrong_hours"),
        "lag_hours": _lag_hours(lags),
        "lags": dict(lags),
        "refreshes_per_portal_per_30_days": {
            "mean": weighed("refreshes_per_portal_per_30_days", "mean", digits=2),
            "max": max(figures["refreshes_per_portal_per_30_days"]["max"] for figures in shards),
        },
        "renewals_per_portal_per_30_days": {
            "mean": weighed("renewals_per_portal_per_30_days", "mean", digits=2),
            "max": max(figures["renewals_per_portal_per_30_days"]["max"] for figures in shards),
        },
        "refreshes_installed_once_per_30_days": {
            "portals": once_portals,
            "mean": round(sum(once["mean"] * once["portals"] for once in installed_once) / max(once_portals, 1), 2),
            "max": max(once["max"] for once in installed_once),
        },
        "rest_requests_per_portal_per_day": weighed("rest_requests_per_portal_per_day", digits=3),
        "aws_requests_per_portal_per_month": weighed("aws_requests_per_portal_per_month", digits=1),
        **{key: added(key) for key in ("aws_faults", "bitrix24_faults", "install_answers", "billing_answers")},
        **{
            key: sum(figures[key] for figures in shards)
            for key in (
                "requests_over_the_bucket",
                "billing_accounts",
                "installs_lost",
                "installs_unvouched_after_a_lost_answer",
                "pairs_lost_to_a_slow_answer",
                "pairs_in_doubt_at_the_end",
                "unreachable_but_installed",
                "events_missing",
                "events_extra",
                "events_told",
            )
        },
        **{
            key: [example for figures in shards for example in figures[key]][:10]
            for key in ("unexplained_examples", "lost_examples", "event_examples")
        },
        "pairs_in_doubt_hours": sorted(hours for figures in shards for hours in figures["pairs_in_doubt_hours"]),
        **{
            key: max(shards, key=lambda figures: _most_in_30_days(figures["most_refreshed"]))[key]
            for key in ("most_refreshed", "most_refreshed_life")
        },
    }


def _tells(before: tuple, after: tuple) -> bool:
    """Whether an EntitlementChanged after another tells something (domain/entitlement_events.py):
    another answer, or an `until` or `grace_until` moved a day or more."""
    from billing_webhooks.domain.entitlement_events import day_apart

    return before[1:3] != after[1:3] or day_apart(before[3], after[3]) or day_apart(before[4], after[4])


def _spread(counts: list[int]) -> dict[str, float | int]:
    """Per-portal counts as the table gives them: their mean, and the most."""
    return {"mean": round(sum(counts) / max(len(counts), 1), 2), "max": max(counts, default=0)}


def _renewals_by_day(portal: Any) -> dict[str, int]:
    """A portal's refreshes of the pair the stack keeps, by day: all but the vouchings, each the
    first refresh of the pair an install or update brought (its administrator's act, not a check)."""
    vouched = portal.vouchings_by_day
    return {day: left for day, count in portal.refreshes_by_day.items() if (left := count - vouched.get(day, 0))}


def _most_in_30_days(by_day: dict[str, int]) -> int:
    from datetime import date, timedelta

    days = {date.fromisoformat(day): count for day, count in by_day.items()}
    return max(
        (sum(c for d, c in days.items() if first <= d < first + timedelta(days=30)) for first in days), default=0
    )


def _percentile(values: list[float], share: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(share * len(ordered)))]


def table(figures: dict[str, Any]) -> str:
    lines = [
        f"Simulated {figures['days']} days of {figures['portals']} portals (seed {figures['seed']}, faults "
        f"{'on' if figures['faults'] else 'off'}, {figures.get('shards', 1)} shard(s)) in {figures['seconds']} s",
        f"  portal-hours held against the truth   {figures['portal_hours']:,}",
    ]
    for cause, hours in sorted(figures["wrong_hours"].items()):
        lag = figures["lag_hours"].get(cause, {})
        lines.append(
            f"  wrong: {cause:<72} {hours:>6} h   lag p50 {lag.get('p50')} h, p99 {lag.get('p99')} h, max {lag.get('max')} h"
        )
    if not figures["wrong_hours"]:
        lines.append("  wrong: none")
    refreshes, renewals = figures["refreshes_per_portal_per_30_days"], figures["renewals_per_portal_per_30_days"]
    once = figures["refreshes_installed_once_per_30_days"]
    lines += [
        f"  OAuth refreshes per portal per 30 days   mean {refreshes['mean']}, most {refreshes['max']}"
        " (installs' and updates' vouchings included)",
        f"  renewals of the kept pair per 30 days    mean {renewals['mean']}, most {renewals['max']}",
        f"  refreshes, portals installed once         mean {once['mean']}, most {once['max']}"
        f" ({once['portals']} portals, their install's vouching included)",
        f"  REST requests per portal per day          {figures['rest_requests_per_portal_per_day']}",
        f"  REST requests over the bucket             {figures['requests_over_the_bucket']}",
        f"  AWS requests per portal per month         {figures['aws_requests_per_portal_per_month']}",
        f"  installs answered                         {figures['install_answers']}",
        f"  billing accounts, notifications answered  {figures['billing_accounts']}, {figures['billing_answers']}",
        f"  installs lost                             {figures['installs_lost']}",
        f"  installs unvouched: Bitrix24 lost the answer  {figures['installs_unvouched_after_a_lost_answer']}",
        f"  pairs lost to a slow answer               {figures['pairs_lost_to_a_slow_answer']}",
        f"  pairs in doubt at the end                 {figures['pairs_in_doubt_at_the_end']}"
        f" (in doubt for {figures['pairs_in_doubt_hours']} h: until its administrator reinstalls or updates)",
        f"  unreachable but installed                 {figures['unreachable_but_installed']}",
        f"  EntitlementChanged told                   {figures['events_told']}"
        f" (missing {figures['events_missing']}, extra {figures['events_extra']})",
        f"  faults played: Bitrix24 {figures['bitrix24_faults']}, AWS {figures['aws_faults']}",
    ]
    return "\n".join(lines)


def _play_shards(shards: int) -> dict[str, Any]:
    """Each shard a process of its own, on a stack of its own: the stack answers one request at a
    time, so one process keeps one core busy (a 1,000-portal year: 2 shards on 2 cores, about half
    the time of one)."""
    import subprocess
    import tempfile

    with tempfile.TemporaryDirectory(prefix="simulate-") as directory:
        runs = []
        for shard in range(shards):
            out = os.path.join(directory, f"shard-{shard}.json")
            env = os.environ | {"SIMULATE_SHARD": f"{shard}/{shards}", "SIMULATE_FIGURES": out}
            runs.append((subprocess.Popen([sys.executable, "-m", "local.simulate"], env=env), out))  # noqa: S603
        failed = [shard for shard, (run, _) in enumerate(runs) if run.wait() != 0]
        if failed:
            raise SystemExit(f"make simulate: shard {failed} failed (its output is above)")
        return merge_shards([json.loads(open(out).read()) for _, out in runs])  # noqa: PTH123, SIM115


def main() -> None:
    portals, days = int(os.environ.get("PORTALS") or 1000), int(os.environ.get("DAYS") or 365)
    seed, faults = int(os.environ.get("SEED") or 1), (os.environ.get("FAULTS") or "1") not in ("0", "off", "false")
    shard = os.environ.get("SIMULATE_SHARD")
    if shard:  # one of the shards `make simulate` started: its figures to the file it was given
        mine, of = (int(part) for part in shard.split("/"))
        log = lambda line: print(f"[shard {mine + 1}/{of}] {line}", flush=True)  # noqa: E731
        figures = Simulation(portals, days, seed, faults, log=log, shard=(mine, of)).run()
        with open(os.environ["SIMULATE_FIGURES"], "w") as out:  # noqa: PTH123
            json.dump(figures, out)
        return
    # Shards: one per core by default (SHARDS), never more than there are portals to share.
    shards = max(1, min(int(os.environ.get("SHARDS") or os.cpu_count() or 1), portals))
    print(
        f"make simulate: {portals} portals, {days} days, seed {seed}, faults {'on' if faults else 'off'}, "
        f"{shards} shard{'s' if shards > 1 else ''}",
        flush=True,
    )
    if shards > 1:
        figures = _play_shards(shards)
    else:
        figures = Simulation(portals, days, seed, faults, log=lambda line: print(line, flush=True)).run()
    print(table(figures))
    print(json.dumps({key: value for key, value in figures.items() if key != "lags"}), file=sys.stderr)


if __name__ == "__main__":
    main()
