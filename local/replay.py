"""`make replay`: run the deliveries that `make dev` parked on its rescue queue through their
handlers again, as ReplayFunction does in AWS. Start it while `make dev` runs (same ports:
DYNAMODB_LOCAL_PORT, MOTO_PORT)."""

import sys
from collections.abc import Callable
from typing import Any

from local import template
from local.attach import attach
from local.server import LambdaContext, LocalFunction


def local_invoker() -> Callable[[str, dict[str, Any]], dict[str, Any]]:
    """Invoke by function name, as Lambda does; here a function's name is its logical id."""
    functions = {route.function: LocalFunction(route) for route in template.routes()}

    def invoke(function_name: str, event: dict[str, Any]) -> dict[str, Any]:
        function = functions[function_name]
        return function.handler(event, LambdaContext(function.route.function))

    return invoke


def replay(retry_seconds: int | None = None) -> dict[str, int]:
    """Replay what the handlers' environment's rescue queue holds (that environment already set).
    A parcel that failed on its own is hidden `retry_seconds` (default: the job's)."""
    template.use_layer()
    from billing_webhooks.jobs.replay import PORTAL_RETRY_SECONDS, replay_parked

    return replay_parked(
        local_invoker(), retry_seconds=PORTAL_RETRY_SECONDS if retry_seconds is None else retry_seconds
    )


def main() -> None:
    """`make replay`; `make replay-quarantine` (--quarantined) first sends the quarantined back."""
    attach()  # install and update replays call the portal: make dev's fake Bitrix24
    if "--quarantined" in sys.argv:
        from billing_webhooks.jobs.quarantine_requeue import requeue_quarantined

        print(f"requeued {requeue_quarantined()} quarantined deliveries")
    counts = replay()
    print(
        f"replayed {counts['replayed']}, refused {counts['refused']}, deferred {counts['deferred']}, "
        f"dead-lettered {counts['dead_lettered']}"
    )
    if counts["deferred"]:
        print("storage or a portal is still failing: those stay parked; run `make replay` again once it answers")


if __name__ == "__main__":
    main()
