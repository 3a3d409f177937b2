"""GET /accounts/{account_id}, /accounts/{account_id}/notifications, /portals/{member_id}: the
private read API (AWS_IAM), routed by Powertools' resolver in http/reads.py."""

from typing import Any

from billing_webhooks.http.reads import app
from billing_webhooks.observability import logger


@logger.inject_lambda_context(clear_state=True)
def handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    return app.resolve(event, context)
