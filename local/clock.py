"""Test clocks: one clock for the whole local stack, moved on demand, as Stripe's test clocks are.

The handlers and jobs read the time through billing_webhooks/clock.py, which the stack points at
this clock; the fake Bitrix24 reads it too (licences, token lifetimes, its request bucket). The
clock runs at the real clock's pace from wherever it was last moved, never backwards.

Moving it (`POST /_clock` on the fake's port) runs every scheduled function whose time came, at its
own instant, in order, as EventBridge would have; the fake's late ONAPPPAYMENT deliveries go out at
theirs. After each run the stack's streams are drained before the clock moves on, so a month of a
portal's life plays in seconds, in the order it would have in AWS.

A run with nothing to do changes nothing, so the clock skips it: before each step it asks every
job's own index (or queue) when it next has work, and goes to the first scheduled instant at or
after that. Otherwise a month would be 43,200 runs of the minute's deadline check.
"""

import re
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from local import template

RATE = re.compile(r"rate\((\d+) (minute|minutes|hour|hours|day|days)\)$")
UNIT_SECONDS = {"minute": 60, "hour": 3600, "day": 86400}
NEVER = float("inf")
# A step's jobs and streams may not take longer than this to settle (a stuck stack is an error).
SETTLE_SECONDS = 120
# One POST may not run more than this many scheduled runs (a job that never runs out of work).
MAX_RUNS = 200_000


class TestClock:
    """Epoch seconds that move with the real clock, from wherever they were last set."""

    def __init__(self) -> None:
        self.offset = 0.0
        self.lock = threading.Lock()

    def time(self) -> float:
        return time.time() + self.offset

    def now(self) -> datetime:
        return datetime.fromtimestamp(self.time(), UTC)

    def move_to(self, instant: float) -> None:
        """To `instant`, unless the clock is already past it (never backwards)."""
        with self.lock:
            self.offset = max(self.offset, instant - time.time())


def rate_seconds(expression: str) -> int:
    """`rate(5 minutes)` as 300; the template's schedules are all rates."""
    match = RATE.match(expression.strip())
    if not match:
        raise ValueError(f"not a rate expression this clock can run: {expression!r}")
    return int(match.group(1)) * UNIT_SECONDS[match.group(2).removesuffix("s")]


def scheduled_functions(parameters: dict[str, str] | None = None) -> list[tuple[str, int]]:
    """Every function with a schedule in the template, and its rate in seconds, in template order."""
    defaults = {name: spec.get("Default", "") for name, spec in template.load().get("Parameters", {}).items()}
    values = defaults | (parameters or {})
    found = []
    for name, resource in template.resources("AWS::Serverless::Function").items():
        for event in resource["Properties"].get("Events", {}).values():
            if event["Type"] in ("Schedule", "ScheduleV2"):
                props = event["Properties"]
                expression = props.get("Schedule") or props.get("ScheduleExpression")
                if isinstance(expression, dict):
                    expression = values[expression["Ref"]]
                found.append((name, rate_seconds(expression)))
    return found


@dataclass
class Job:
    """Something the clock runs at its instants: a scheduled function, or the fake's deliveries."""

    name: str
    every: int  # seconds between its instants (0: at exactly the instant its work names)
    next_work: Callable[[], float | None]  # when it next has something to do (None: nothing)
    run: Callable[[float], Any]  # at this instant; what it did
    last_run: float = float("-inf")
    peeked: tuple[int, float | None] | None = None  # (the stack's writes then, what the peek said)
    outside_the_stack: bool = False  # its work is not in a table (the fake's deliveries): always asked

    def next_instant(self, now: float, writes: int | None = None) -> float:
        """Its first instant at or after its next work. The peek is reused while the stack wrote
        nothing since (`writes`, the count of its writes; None: unknown, peek again)."""
        if writes is not None and not self.outside_the_stack and self.peeked is not None and self.peeked[0] == writes:
            work = self.peeked[1]
        else:
            work = self.next_work()
            self.peeked = None if writes is None else (writes, work)
        if work is None:
            return NEVER
        at = max(work, now)
        if self.every:
            at = -(-at // self.every) * self.every  # the first of its instants at or after the work
            if at <= self.last_run:
                at = self.last_run + self.every
        return at


@dataclass
class ClockRunner:
    """Moves a TestClock and runs the stack's jobs at their instants (`advance`)."""

    clock: TestClock
    jobs: list[Job]
    settle: Callable[[], None]  # returns once the stack's streams have handed on every record
    # How many writes the stack has made so far (None: unknown). Nothing written since the last
    # settle or peek: the streams are quiet and the peeks still true, so neither is done again.
    writes: Callable[[], int] | None = None
    lock: threading.Lock = field(default_factory=threading.Lock)
    settled_at: int | None = None

    def _settle(self) -> None:
        if self.writes is None or self.writes() != self.settled_at:
            self.settle()
            self.settled_at = self.writes() if self.writes else None

    def advance(self, to: float) -> list[dict[str, Any]]:
        """Every job whose time came before `to`, each at its own instant in order; then the clock
        at `to`, the stack quiet. What ran, with what each said."""
        ran: list[dict[str, Any]] = []
        with self.lock:  # one move at a time
            self._settle()
            while len(ran) < MAX_RUNS:
                now, writes = self.clock.time(), self.writes() if self.writes else None
                instant, job = min(
                    ((job.next_instant(now, writes), job) for job in self.jobs), key=lambda pair: pair[0]
                )
                if instant > to:
                    break
                self.clock.move_to(instant)
                job.last_run = instant
                try:
                    outcome = job.run(instant)
                except Exception as error:  # a failed invocation, as in AWS: the schedule goes on
                    outcome = {"error": f"{error.__class__.__name__}: {error}"[:300]}
                self._settle()
                ran.append({"at": iso(instant), "job": job.name, "outcome": outcome})
            self.clock.move_to(to)
            self._settle()
        return ran

    def answer(self, request: dict[str, Any] | None) -> tuple[int, dict[str, Any]]:
        """`GET /_clock` (request None) and `POST /_clock`: the HTTP answer."""
        if request is None:
            return 200, {"now": iso(self.clock.time())}
        now = self.clock.time()
        to = _target(request, now)
        if to is None:
            return 400, {
                "error": 'a JSON object: {"advance_seconds": N} (N from 0 to 3,153,600,000) or {"to": "<ISO 8601 '
                'with offset>"} (never before now)',
                "now": iso(now),
            }
        try:
            ran = self.advance(to)
        except Exception as error:  # the stack itself failing (a stream stuck, a table gone): said, not a traceback
            return 500, {"error": f"{error.__class__.__name__}: {error}"[:500], "now": iso(self.clock.time())}
        return 200, {"now": iso(self.clock.time()), "ran": ran}


MAX_ADVANCE_SECONDS = 100 * 365 * 86400


def _target(request: dict[str, Any], now: float) -> float | None:
    if set(request) == {"advance_seconds"}:
        seconds = request["advance_seconds"]
        if isinstance(seconds, int | float) and not isinstance(seconds, bool) and 0 <= seconds <= MAX_ADVANCE_SECONDS:
            return now + float(seconds)
        return None
    if set(request) == {"to"} and isinstance(request["to"], str):
        try:
            moment = datetime.fromisoformat(request["to"].replace("Z", "+00:00"))
        except ValueError:
            return None
        if moment.tzinfo is None or not now - 1 <= moment.timestamp() <= now + MAX_ADVANCE_SECONDS:
            return None
        return max(moment.timestamp(), now)
    return None


def iso(epoch: float) -> str:
    return datetime.fromtimestamp(epoch, UTC).isoformat(timespec="seconds").replace("+00:00", "Z")
