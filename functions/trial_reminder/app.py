"""POST /billing/trial-reminder: the billing system's TrialReminder notification."""

from billing_webhooks.auth import billing_shared_secret
from billing_webhooks.models.billing import TrialReminder
from billing_webhooks.pipeline import Webhook

handler = Webhook(TrialReminder, auth=billing_shared_secret, alert=True).handler
