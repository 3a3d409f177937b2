"""POST /billing/trial-reminder: the billing system's TrialReminder notification."""

from billing_webhooks.http.auth import billing_credentials
from billing_webhooks.http.pipeline import Webhook
from billing_webhooks.models.billing.trial_reminder import TrialReminder

handler = Webhook(TrialReminder, auth=billing_credentials, alert=True).handler
