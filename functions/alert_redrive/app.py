"""Every 5 minutes: publish alerts whose lease expired while still pending."""

from billing_webhooks.redrive import handler

__all__ = ["handler"]
