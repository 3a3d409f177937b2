"""One delivery on its way down the pipeline: the request as it came, and what each step found.

The pipeline makes one `Delivery` per request and hands it to every step; a step that learns
something (the decoded body, who sent it) says so on it. So a failure at any step finds what the
steps before it learned in one place, for parking or quarantining the delivery, without dicts
filled on the side or attributes set on exceptions.
"""

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from billing_webhooks import clock
from billing_webhooks.wire.credentials import portal_auth_of, token_sha256


@dataclass(eq=False)
class Delivery:
    event: dict[str, Any]  # the HTTP API (payload 2.0) event
    # A replayed delivery's parcel (recovery/parcels.py), checked before anything reads it; None
    # for a live one. Only a direct Invoke can set it: API Gateway never sends `rescued`.
    replay: dict[str, Any] | None
    payload: dict[str, Any] | None = None  # the decoded body, once decoded
    authenticated: bool = False
    sender: Any = None  # what authentication learned of the sender: an installation, the portal's word
    # The portal's answer (app.info), when the portal confirmed an install but storage failed
    # after: the parcel keeps it, so that the replay needs no token to believe the install.
    confirmation: dict[str, Any] | None = None

    @classmethod
    def of(cls, event: dict[str, Any]) -> "Delivery":
        parcel = event.get("rescued")
        return cls(event=event, replay=parcel if isinstance(parcel, dict) else None)

    @property
    def is_replay(self) -> bool:
        return self.replay is not None

    def presented_digests(self, tokens: list[str]) -> list[str]:
        """SHA-256 of each presented token. A replay has only the digests its parcel kept."""
        if self.replay is not None:
            return [str(digest) for digest in self.replay.get("credential_sha256") or []]
        return [token_sha256(token) for token in tokens]

    @property
    def portal_token_sha256(self) -> str | None:
        """The digest of the portal's `auth.application_token`, live or replayed: what an
        installation keeps."""
        token = portal_auth_of(self.payload).get("application_token")
        digests = self.presented_digests([token] if isinstance(token, str) and token else [])
        return digests[-1] if digests else None

    def received_epoch(self) -> float:
        """When the delivery reached us, in Unix seconds: now, or when a replayed one first came."""
        return clock.epoch() if self.replay is None else parcel_received_epoch(self.replay)


def parcel_received_epoch(parcel: dict[str, Any]) -> float:
    """When a parked delivery first reached us, in Unix seconds (recovery/parcels.py)."""
    return datetime.fromisoformat(parcel["received_at"]).timestamp()  # 3.11+ reads the trailing Z
