"""POST /billing/trial-reminder: the billing system's TrialReminder notification."""

from billing_webhooks.auth import billing_credentials
from billing_webhooks.models.billing.trial_reminder import TrialReminder
from billing_webhooks.pipeline import Webhook

handler = Webhook(TrialReminder, auth=billing_credentials, alert=True).handler
