"""The seed payloads of the specification, kept in events/seeds/ (its README names each source)."""

import json
from decimal import Decimal
from pathlib import Path

SEEDS = Path(__file__).resolve().parents[1] / "events" / "seeds"
BILLING_TYPES = (
    "InvoiceForNewPeriod",
    "InvoiceForNewProduct",
    "UnPaidInvoice",
    "AccountStateChange",
    "TrialReminder",
    "PercentOfBalanceUsed",
    "ProductStateChange",
    "NewPayment",
)


def billing_seed_texts() -> dict[str, str]:
    """{type: example JSON text} for the 8 billing notifications, character for character."""
    return {kind: (SEEDS / f"{kind}.json").read_text().rstrip("\n") for kind in BILLING_TYPES}


def billing_seeds() -> dict[str, dict]:
    return {kind: json.loads(text, parse_float=Decimal) for kind, text in billing_seed_texts().items()}


def bitrix24_payment_seed() -> dict:
    return json.loads((SEEDS / "ONAPPPAYMENT.json").read_text())
