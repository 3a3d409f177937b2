"""Every 5 minutes, or invoked by hand: run parked deliveries through their functions again."""

from billing_webhooks.replay import handler

__all__ = ["handler"]
