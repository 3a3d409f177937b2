"""The seed payloads, read from the reference documents in ../shared/reference/."""

import json
import re
from decimal import Decimal
from pathlib import Path

REFERENCE = Path(__file__).resolve().parents[2] / "shared" / "reference"
BILLING_DOC = REFERENCE / "004_8720deebd60fdc68.txt"
BITRIX24_PAYMENT_DOC = REFERENCE / "000_3eb3e5dd4d4ecb0b.txt"


def _json_text_after(text: str, start: int) -> str:
    brace = text.index("{", start)
    _, end = json.JSONDecoder().raw_decode(text, brace)
    return text[brace:end]


def billing_seed_texts() -> dict[str, str]:
    """{type: example JSON text} for the 8 billing notifications, character for character."""
    text = BILLING_DOC.read_text()
    return {m.group(1): _json_text_after(text, m.end()) for m in re.finditer(r"Object example\n(\w+)\n", text)}


def billing_seeds() -> dict[str, dict]:
    return {kind: json.loads(text, parse_float=Decimal) for kind, text in billing_seed_texts().items()}


def bitrix24_payment_seed() -> dict:
    text = BITRIX24_PAYMENT_DOC.read_text()
    return json.loads(_json_text_after(text, text.index("Data is transmitted as a POST request")))
