"""`make rebuild-accounts`: rebuild the running `make dev` stack's account view from its
NotificationsTable alone, by invoking AccountProjectorFunction with `{"rebuild": {}}` exactly as
docs/accounts.md says to on AWS. Idempotent: run it any time, as often as you like."""

import json
from typing import Any

from local import template
from local.attach import attach
from local.server import LambdaContext, LocalFunction

REBUILD_EVENT: dict[str, Any] = {}


def main() -> None:
    attach()
    projector = LocalFunction(template.function("AccountRebuildFunction"))
    answer = projector.handler(REBUILD_EVENT, LambdaContext(projector.route.function))
    print(
        f"projected {answer['records']} billing records again; {answer['moved']} aspect(s) changed "
        "(the rest already said what the rules say)"
    )
    if answer["skipped"]:
        print(f"{answer['skipped']} record(s) could not be projected: " + "; ".join(answer["unprojectable"]))
    if answer["resume"]:
        print(f"stopped early; go on with {json.dumps({'start': answer['resume']})}")


if __name__ == "__main__":
    main()
