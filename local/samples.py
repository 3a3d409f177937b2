"""Credentials the local stack accepts, and that the sample events in events/ carry.

Made-up values for local use only; in AWS the secrets are generated or set by the operator.
"""

BILLING_TOKEN = "local-billing-token"
PORTAL_MEMBER_ID = "a223c6b3710f85df22e9377d6c4f7553"
PORTAL_APPLICATION_TOKEN = "51856fefc120afa4b628cc82d3935cce"

# Secret logical id in template.yaml -> the JSON value the local stack stores under that name.
SECRET_VALUES = {
    "BillingWebhookSecret": {"current": BILLING_TOKEN},
    "Bitrix24PortalSecret": {PORTAL_MEMBER_ID: PORTAL_APPLICATION_TOKEN},
}
