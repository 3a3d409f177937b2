"""AccountRebuildFunction, invoked by hand: the account view projected again from
NotificationsTable (jobs/account_rebuild.py; docs/accounts.md)."""

from typing import Any

from billing_webhooks.jobs.account_rebuild import rebuild_accounts
from billing_webhooks.observability import logger, metrics


@logger.inject_lambda_context(clear_state=True)
@metrics.log_metrics
def handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    return rebuild_accounts(event if isinstance(event, dict) else {}, context)
