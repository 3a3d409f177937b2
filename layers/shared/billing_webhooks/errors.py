"""Every refusal the pipeline can give, as exceptions that carry their HTTP meaning.

`responses.problem` turns any of them into an RFC 9457 problem document: the one place where
exceptions map to HTTP responses.
"""

from typing import Any


class WebhookError(Exception):
    status: int = 500
    title: str = "Internal error"
    slug: str = "internal-error"
    reason: str = "internal"  # metric dimension: why a delivery was refused

    def __init__(
        self,
        detail: str,
        *,
        errors: list[dict[str, Any]] | None = None,
        headers: dict[str, str] | None = None,
    ) -> None:
        super().__init__(detail)
        self.detail = detail
        self.errors = errors
        self.headers = headers or {}

    @property
    def parked(self) -> bool:
        """A failure of ours that the delivery must outlive: parked on the rescue queue before the
        answer and run again by the replay (recovery/). A refusal of the delivery itself is not."""
        return self.status >= 500


class MalformedBody(WebhookError):
    status, title, slug, reason = 400, "Malformed body", "malformed-body", "malformed"


class MissingCredentials(WebhookError):
    status, title, slug, reason = 401, "Credentials required", "missing-credentials", "unauthenticated"

    def __init__(self, detail: str) -> None:
        super().__init__(detail, headers={"WWW-Authenticate": 'Bearer realm="webhooks"'})


class WrongCredentials(WebhookError):
    status, title, slug, reason = 403, "Credentials refused", "wrong-credentials", "forbidden"


class NotFound(WebhookError):
    status, title, slug, reason = 404, "Not found", "not-found", "not_found"


class BadRequest(WebhookError):
    """A read request we cannot answer as asked (a bad cursor or limit)."""

    status, title, slug, reason = 400, "Bad request", "bad-request", "bad_request"


class PayloadConflict(WebhookError):
    status, title, slug, reason = 409, "Conflicting redelivery", "conflict", "conflict"


class PayloadTooLarge(WebhookError):
    status, title, slug, reason = 413, "Body too large", "payload-too-large", "too_large"


class UnsupportedMediaType(WebhookError):
    status, title, slug, reason = 415, "Unsupported content type", "unsupported-media-type", "media_type"


class InvalidPayload(WebhookError):
    status, title, slug, reason = 422, "Invalid payload", "invalid-payload", "invalid"


class Unstorable(InvalidPayload):
    """DynamoDB refused the request itself (ValidationException): the same delivery would be
    refused on every try, so it is no outage, never parked, and answered as invalid."""

    title, slug, reason = "Cannot be stored", "unstorable", "unstorable"


class PortalUnavailable(WebhookError):
    """The portal did not confirm in time, or answered something other than app.info's result."""

    status, title, slug, reason = 502, "Portal did not confirm", "portal-unavailable", "portal_unavailable"
    parked = False  # without the portal's word there is nothing to keep: the install is not believed


class PortalUnconfirmed(PortalUnavailable):
    """The portal did not answer app.info in time (down, slow): Bitrix24 never resends an install
    or an update, so it is parked (its access token sealed) and replayed until the portal answers."""

    title, slug, reason = "Portal did not confirm yet", "portal-unconfirmed", "portal_unconfirmed"
    parked = True


class BindingFailed(PortalUnavailable):
    """The install or update is stored, but the portal did not bind our handlers for its other
    events: parked (its access token sealed), so that the replay binds them."""

    title, slug, reason = "Portal events not bound", "binding-failed", "binding_failed"
    parked = True


class ServiceUnavailable(WebhookError):
    status, title, slug, reason = 503, "Temporarily unavailable", "unavailable", "unavailable"
    retry_after_seconds = 5

    def __init__(self, detail: str) -> None:
        super().__init__(detail, headers={"Retry-After": str(self.retry_after_seconds)})
