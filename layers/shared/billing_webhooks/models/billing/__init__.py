"""The 8 notifications of the billing system (seed 004): a common envelope, details per type.

One module per notification (or pair sharing their details), so that a function defines only the
models it validates: defining all 19 classes costs 12 ms of cold start. The names are also
reachable from here, imported on first use.
"""

from importlib import import_module
from typing import Any

_MODULES = {
    "BillingNotification": "envelope",
    "InvoiceType": "invoices",
    "PaymentLink": "invoices",
    "InvoiceDetails": "invoices",
    "InvoiceForNewPeriod": "invoices",
    "InvoiceForNewProduct": "invoices",
    "UnPaidInvoiceDetails": "unpaid_invoice",
    "UnPaidInvoice": "unpaid_invoice",
    "StatePeriod": "state_changes",
    "AccountStateChangeDetails": "state_changes",
    "AccountStateChange": "state_changes",
    "ProductStateChangeDetails": "state_changes",
    "ProductStateChange": "state_changes",
    "TrialReminderDetails": "trial_reminder",
    "TrialReminder": "trial_reminder",
    "PercentOfBalanceUsedDetails": "percent_of_balance_used",
    "PercentOfBalanceUsed": "percent_of_balance_used",
    "NewPaymentDetails": "new_payment",
    "NewPayment": "new_payment",
}


def __getattr__(name: str) -> Any:
    if name not in _MODULES:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return getattr(import_module(f"{__name__}.{_MODULES[name]}"), name)
