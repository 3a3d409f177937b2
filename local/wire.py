"""Bodies as the senders put them on the wire."""

from typing import Any
from urllib.parse import urlencode


def php_form_pairs(value: Any, prefix: str = "") -> list[tuple[str, str]]:
    """Flatten nested data into PHP bracket keys, as Bitrix24 does: {"auth": {"domain": x}} ->
    auth[domain]=x. Every value becomes a string, as on the wire."""
    if isinstance(value, dict):
        items: Any = value.items()
    elif isinstance(value, list):
        items = enumerate(value)
    else:
        return [(prefix, "" if value is None else str(value))]
    pairs = []
    for key, child in items:
        pairs += php_form_pairs(child, f"{prefix}[{key}]" if prefix else str(key))
    return pairs


def php_form_encode(value: dict[str, Any]) -> str:
    return urlencode(php_form_pairs(value))
