"""The one request pipeline: decode -> authenticate -> validate -> store -> alert -> respond.

A function's app.py binds a model, an authenticator and what a delivery does besides its record:

    handler = Webhook(UnPaidInvoice, auth=billing_credentials, alert=True).handler
    handler = Webhook(AppInstallEvent, auth=portal_confirms_install, effect=bindings.install).handler

One `Delivery` (wire/delivery.py) goes down the steps; when one fails, the pipeline reports it,
keeps what it must (parked for a replay, or quarantined) and answers with a problem document.
"""

from collections.abc import Callable
from datetime import datetime
from typing import Any

from aws_lambda_powertools.metrics import MetricUnit
from pydantic import ValidationError

from billing_webhooks import clock
from billing_webhooks.data import notifications, secrets, toolkit
from billing_webhooks.errors import InvalidPayload, PayloadConflict, WebhookError
from billing_webhooks.http import responses
from billing_webhooks.http.auth import Authenticator
from billing_webhooks.models.base import Notification
from billing_webhooks.observability import logger, metrics
from billing_webhooks.settings import settings
from billing_webhooks.wire import decoding
from billing_webhooks.wire.credentials import portal_auth_of
from billing_webhooks.wire.delivery import Delivery


def validation_problem(error: ValidationError) -> InvalidPayload:
    # Paths and messages only: the rejected input may hold a secret, so it is never echoed.
    fields = [
        {
            "field": ".".join(str(part) for part in item["loc"]) or "(body)",
            "message": item["msg"],
            "type": item["type"],
        }
        for item in error.errors(include_url=False, include_input=False, include_context=False)
    ]
    return InvalidPayload(f"{len(fields)} field(s) failed validation.", errors=fields)


# After the record is stored (or found stored): (notification, the delivery, now). Runs on
# duplicates too, so it must be idempotent. It returns True when it changed what it keeps, False
# when it refused the delivery as older than what it keeps (stale: not an error), None when there
# was nothing for it to change.
Effect = Callable[[Notification, Delivery, datetime], bool | None]
STALE = "stale"


def report(error: Exception) -> WebhookError:
    """Count and log a failed delivery; the refusal to answer with (never a stack trace)."""
    if not isinstance(error, WebhookError):
        metrics.add_metric(name="Failed", unit=MetricUnit.Count, value=1)
        logger.error("delivery failed", extra={"error": error.__class__.__name__})
        return WebhookError("The delivery could not be processed.")
    metrics.add_dimension("reason", error.reason)
    metrics.add_metric(name="Rejected", unit=MetricUnit.Count, value=1)
    if isinstance(error, PayloadConflict):
        metrics.add_metric(name="Conflict", unit=MetricUnit.Count, value=1)
    log = logger.error if error.status >= 500 else logger.warning
    log("delivery refused", extra={"status": error.status, "reason": error.reason, "detail": error.detail})
    return error


class Webhook:
    def __init__(
        self,
        model: type[Notification],
        *,
        auth: Authenticator,
        media_types: frozenset[str] = frozenset({decoding.JSON}),
        alert: bool = False,
        effect: Effect | None = None,
        keep_access_token: bool = False,
        validate_first: bool = False,
    ) -> None:
        self.model = model
        self.alert = alert
        self.effect = effect
        # Its effect calls the portal again on replay: a parked delivery keeps the access token sealed.
        self.keep_access_token = keep_access_token
        # Its authenticator asks the portal (up to 3 s): an invalid body is refused before that call.
        self.validate_first = validate_first
        self.auth = auth
        self.media_types = media_types
        settings()  # at cold start: a missing variable fails here, by its name
        self.handler = logger.inject_lambda_context(clear_state=True)(metrics.log_metrics(self.handle))

    def handle(self, event: dict[str, Any], context: Any = None) -> dict[str, Any]:
        logger.thread_safe_clear_keys()
        delivery = Delivery.of(event)
        try:
            return self.deliver(delivery)
        except Exception as error:
            failure = report(error)
        if isinstance(failure, InvalidPayload) and delivery.authenticated:  # authenticated, still refused
            failure = self.quarantine(delivery, context, failure)
        elif failure.parked and delivery.payload is not None and not delivery.is_replay:
            self.park(delivery, context, failure)
        return responses.problem(failure)

    def deliver(self, delivery: Delivery) -> dict[str, Any]:
        if delivery.replay is not None:  # nothing in a replay is read before its signature holds
            from billing_webhooks.recovery import parcels  # lazy: see park()

            parcels.verify(delivery.replay)
        delivery.payload = decoding.decode(delivery.event, self.media_types)
        if self.keep_access_token and delivery.replay is not None:
            delivery.payload = parcels.with_sealed_access_token(delivery.replay, delivery.payload)
        self._prefetch_secrets()
        if self.validate_first:
            notification = self._validate(delivery.payload)
            self._authenticate(delivery)
        else:
            self._authenticate(delivery)
            notification = self._validate(delivery.payload)
        # Thread-safe keys: the same in a Lambda container, and deliveries served side by side on
        # one process (the local server) keep their own correlation ids.
        logger.thread_safe_append_keys(
            correlation_id=notification.notification_key, notification_type=notification.notification_type
        )
        now = clock.now()
        record = notifications.build_record(notification, now)
        if self.alert:
            # Lazy: the alert texts and claims cost about 3 ms of cold start (python -X importtime)
            # that only the two alert functions need.
            from billing_webhooks.domain import alerts

            record.update(alerts.new_claim(now))
        outcome, stored = notifications.put_record(record)
        metrics.add_metric(name=outcome.capitalize(), unit=MetricUnit.Count, value=1)
        if self.alert:
            alerts.alert_once(outcome, stored, now)
        status = outcome.value
        if self.effect is not None:
            changed = self.effect(notification, delivery, now)
            logger.debug("effect applied", extra={"effect": self.effect.__name__, "changed": changed})
            if changed is False and outcome is notifications.Outcome.STORED:
                # Kept, but older than what the installation already holds: it changed nothing.
                status = STALE
                metrics.add_metric(name="Stale", unit=MetricUnit.Count, value=1)
        if delivery.replay is not None:
            metrics.add_metric(name="Replayed", unit=MetricUnit.Count, value=1)
            logger.info("parked delivery replayed", extra={"parked_reason": delivery.replay.get("reason")})
        # DEBUG: an accepted delivery is in the table and in the Stored/Duplicate metrics already,
        # and formatting this line costs 0.2 ms of every delivery (`make bench`); refusals,
        # failures and alerts are logged at INFO and above.
        logger.debug("delivery accepted", extra={"outcome": outcome.value})
        return responses.accepted(status, notification.notification_id, notification.notification_type)

    def _authenticate(self, delivery: Delivery) -> None:
        delivery.sender = self.auth(delivery)
        delivery.authenticated = True

    def _validate(self, payload: dict[str, Any]) -> Notification:
        try:
            return self.model.model_validate(payload)
        except ValidationError as error:
            raise validation_problem(error) from None

    def quarantine(self, delivery: Delivery, context: Any, failure: InvalidPayload) -> InvalidPayload:
        """Keep an authenticated delivery our model refused (data/quarantine.py): a fixed model can
        replay it, since its sender never sends it again. Answered 422 all the same."""
        # Lazy, as in park(): only a refused delivery pays for these modules.
        from billing_webhooks.data import quarantine
        from billing_webhooks.recovery import parcels

        reason = f"{failure.reason}: {failure.detail}"
        try:
            if delivery.replay is not None:
                # Refused again on replay: the parcel as first kept, with its credentials' verdict
                # (their digests) and its bytes, never one rebuilt from the replay's event, which
                # carries no credentials (a second replay would be refused 401, the delivery lost).
                parcel = {name: value for name, value in delivery.replay.items() if name != "signature"}
                parcel["reason"] = reason
            else:
                parcel = parcels.parcel(delivery.event, delivery.payload or {}, self._function(context), reason)
            sender = portal_auth_of(delivery.payload).get("member_id") or "billing"
            identifier = quarantine.keep(parcels.sign(parcel), failure.errors or [], str(sender), clock.now())
        except quarantine.QuarantineFull:
            metrics.add_metric(name="QuarantineCapReached", unit=MetricUnit.Count, value=1)
            logger.error("delivery not quarantined: its sender's quarantine is full")
            return failure
        except Exception as error:  # kept on the rescue queue instead: a replay brings it back here
            logger.error("delivery not quarantined", extra={"error": error.__class__.__name__})
            if not delivery.is_replay:
                self.park(delivery, context, failure)
            return failure
        metrics.add_metric(name="Quarantined", unit=MetricUnit.Count, value=1)
        logger.warning("delivery quarantined", extra={"quarantine_id": identifier})
        return type(failure)(
            f"{failure.detail} Kept in quarantine as {identifier} for a replay once it can be stored.",
            errors=failure.errors,
        )

    def park(self, delivery: Delivery, context: Any, failure: WebhookError) -> None:
        """Keep the delivery on the rescue queue (no secret in it) before answering: the sender
        may never send it again."""
        # Lazy: parcels (with the secrets and KMS it uses) cost about 6 ms of cold start (python
        # -X importtime) that only a delivery that fails ever needs.
        from billing_webhooks.recovery import parcels

        # A portal's confirmation (app.info) is kept; an installation record is read again on replay.
        sender = delivery.sender
        confirmed = delivery.confirmation or (sender.model_dump(mode="json") if hasattr(sender, "model_dump") else None)
        try:
            parcel = parcels.parcel(
                delivery.event,
                delivery.payload or {},
                self._function(context),
                f"{failure.reason}: {failure.detail}",
                confirmed,
                keep_access_token=self.keep_access_token,
            )
            message_id = parcels.park(parcel)
        except Exception as error:  # the last resort failed too: say so loudly, the route and when
            metrics.add_metric(name="ParkFailed", unit=MetricUnit.Count, value=1)
            logger.critical("delivery lost: it could not be parked", extra={"error": error.__class__.__name__})
            return
        metrics.add_metric(name="Parked", unit=MetricUnit.Count, value=1)
        logger.warning("delivery parked for replay", extra={"message_id": message_id})

    @staticmethod
    def _function(context: Any) -> str:
        return getattr(context, "function_name", None) or settings().aws_lambda_function_name

    def _prefetch_secrets(self) -> None:
        """On a cold start, Secrets Manager answers while the DynamoDB client is being made (the
        wait overlaps the work); warm, the secrets are cached and this does nothing."""
        secrets.prefetch(*self.auth.secret_ids())
        try:
            toolkit.dynamodb()
        except Exception:  # put_record reports it as it should
            pass
