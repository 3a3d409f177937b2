"""The one place the product reads the time: the real clock in AWS.

Every `now` the functions and jobs use comes from here, so a local stack can install one test
clock (local/clock.py) that the handlers, the scheduled jobs and the fake Bitrix24 all share,
and a month of a portal's life plays in seconds. `time.monotonic` (pacing, timeouts) stays real.
"""

import time
from collections.abc import Callable
from datetime import UTC, datetime

_source: Callable[[], float] = time.time


def epoch() -> float:
    """Seconds since the epoch, now."""
    return _source()


def now() -> datetime:
    """Now, as an aware UTC datetime."""
    return datetime.fromtimestamp(_source(), UTC)


def use(source: Callable[[], float] | None) -> None:
    """Read the time from `source` (a test clock's epoch seconds) from now on; None: the real clock."""
    global _source
    _source = source or time.time
