"""The one request pipeline: decode -> authenticate -> validate -> store -> alert -> respond.

A function's app.py binds a model, an authenticator and what a delivery does besides its record:

    handler = Webhook(UnPaidInvoice, auth=billing_credentials, alert=True).handler
    handler = Webhook(AppInstallEvent, auth=portal_confirms_install, effect=installations.install).handler
"""

from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

from aws_lambda_powertools.metrics import MetricUnit
from pydantic import ValidationError

from billing_webhooks import decoding, responses, secrets, storage
from billing_webhooks.auth import Authenticator
from billing_webhooks.errors import InvalidPayload, PayloadConflict, WebhookError
from billing_webhooks.models.base import Notification
from billing_webhooks.observability import logger, metrics
from billing_webhooks.settings import settings


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


def _replay_context(event: dict[str, Any]) -> dict[str, Any] | None:
    """A replayed Bitrix24 event lost its token; the model takes the token's digest instead."""
    parcel = event.get("rescued")
    digests = parcel.get("credential_sha256") if isinstance(parcel, dict) else None
    return {"application_token_sha256": digests[-1]} if digests else None


# After the record is stored (or found stored): (notification, what auth returned, now). Runs on
# duplicates too, so it must be idempotent. It returns True when it changed what it keeps, False
# when it refused the delivery as older than what it keeps (stale: not an error), None when there
# was nothing for it to change.
Effect = Callable[[Notification, Any, datetime], bool | None]
STALE = "stale"


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
        learned: dict[str, Any] = {}  # what the steps found out, for parking a delivery that fails
        replaying = "rescued" in event  # only ReplayFunction's direct Invoke sets it (rescue.py)
        try:
            response = self._deliver(event, learned)
        except WebhookError as error:
            failure = error
            metrics.add_dimension("reason", error.reason)
            metrics.add_metric(name="Rejected", unit=MetricUnit.Count, value=1)
            if isinstance(error, PayloadConflict):
                metrics.add_metric(name="Conflict", unit=MetricUnit.Count, value=1)
            log = logger.error if error.status >= 500 else logger.warning
            log("delivery refused", extra={"status": error.status, "reason": error.reason, "detail": error.detail})
        except Exception as error:  # never a stack trace in a response or a log line
            failure = WebhookError("The delivery could not be processed.")
            metrics.add_metric(name="Failed", unit=MetricUnit.Count, value=1)
            logger.error("delivery failed", extra={"error": error.__class__.__name__})
        else:
            if replaying:
                metrics.add_metric(name="Replayed", unit=MetricUnit.Count, value=1)
                logger.info("parked delivery replayed", extra={"parked_reason": event["rescued"].get("reason")})
            return response
        if isinstance(failure, InvalidPayload) and "sender" in learned:  # authenticated, still refused
            failure = self._quarantine(event, context, learned, failure)
        elif failure.parked and "payload" in learned and not replaying:
            self._park(event, context, learned, failure)
        return responses.problem(failure)

    def _deliver(self, event: dict[str, Any], learned: dict[str, Any]) -> dict[str, Any]:
        if "rescued" in event:  # a replay: nothing in it is read before its signature holds
            from billing_webhooks import rescue

            rescue.verify(event)
        payload = learned["payload"] = decoding.decode(event, self.media_types)
        if self.keep_access_token and "rescued" in event:
            payload = rescue.with_sealed_access_token(event["rescued"], payload)
        self._prefetch_secrets()
        if self.validate_first:
            notification = self._validate(event, payload)
            sender = learned["sender"] = self.auth(event, payload)
        else:
            sender = learned["sender"] = self.auth(event, payload)
            notification = self._validate(event, payload)
        # Thread-safe keys: the same in a Lambda container, and deliveries served side by side on
        # one process (the local server) keep their own correlation ids.
        logger.thread_safe_append_keys(correlation_id=notification.notification_key,
                                       notification_type=notification.notification_type)
        now = datetime.now(UTC)
        record = storage.build_record(notification, now)
        if self.alert:
            from billing_webhooks import alerts  # only the alert functions need it

            record.update(alerts.new_claim(now))
        outcome, stored = storage.put_record(record)
        metrics.add_metric(name=outcome.capitalize(), unit=MetricUnit.Count, value=1)
        if self.alert:
            self._alert(outcome, stored, now)
        status = outcome.value
        if self.effect is not None:
            changed = self.effect(notification, sender, now)
            logger.debug("effect applied", extra={"effect": self.effect.__name__, "changed": changed})
            if changed is False and outcome is storage.Outcome.STORED:
                # Kept, but older than what the installation already holds: it changed nothing.
                status = STALE
                metrics.add_metric(name="Stale", unit=MetricUnit.Count, value=1)
        # DEBUG: an accepted delivery is in the table and in the Stored/Duplicate metrics already,
        # and formatting this line costs 0.2 ms of every delivery (`make bench`); refusals,
        # failures and alerts are logged at INFO and above.
        logger.debug("delivery accepted", extra={"outcome": outcome.value})
        return responses.accepted(status, notification.notification_id, notification.notification_type)

    def _validate(self, event: dict[str, Any], payload: dict[str, Any]) -> Notification:
        try:
            return self.model.model_validate(payload, context=_replay_context(event))
        except ValidationError as error:
            raise validation_problem(error) from None

    def _quarantine(self, event: dict[str, Any], context: Any, learned: dict[str, Any],
                    failure: InvalidPayload) -> InvalidPayload:
        """Keep an authenticated delivery our model refused (quarantine.py): a fixed model can
        replay it, since its sender never sends it again. Answered 422 all the same."""
        from billing_webhooks import quarantine, rescue

        function = getattr(context, "function_name", None) or settings().aws_lambda_function_name
        try:
            parcel = rescue.sign(rescue.parcel(event, learned["payload"], function,
                                               f"{failure.reason}: {failure.detail}"))
            identifier = quarantine.keep(parcel, failure.errors or [])
        except Exception as error:  # kept on the rescue queue instead: a replay brings it back here
            logger.error("delivery not quarantined", extra={"error": error.__class__.__name__})
            if "rescued" not in event:
                self._park(event, context, learned, failure)
            return failure
        metrics.add_metric(name="Quarantined", unit=MetricUnit.Count, value=1)
        logger.warning("delivery quarantined", extra={"quarantine_id": identifier})
        return type(failure)(f"{failure.detail} Kept in quarantine as {identifier} for a replay once it can be "
                             "stored.", errors=failure.errors)

    def _park(self, event: dict[str, Any], context: Any, learned: dict[str, Any], failure: WebhookError) -> None:
        """Keep the delivery on the rescue queue (no secret in it) before answering: the sender
        may never send it again."""
        from billing_webhooks import rescue

        # A portal's confirmation (app.info) is kept; an installation record is read again on replay.
        sender = learned.get("sender")
        confirmed = getattr(failure, "sender", None) or (sender.model_dump(mode="json") if hasattr(sender, "model_dump") else None)
        function = getattr(context, "function_name", None) or settings().aws_lambda_function_name
        try:
            parcel = rescue.parcel(event, learned["payload"], function, f"{failure.reason}: {failure.detail}", confirmed,
                                   keep_access_token=self.keep_access_token)
            message_id = rescue.park(parcel)
        except Exception as error:  # the last resort failed too: say so loudly, the route and when
            metrics.add_metric(name="ParkFailed", unit=MetricUnit.Count, value=1)
            logger.critical("delivery lost: it could not be parked", extra={"error": error.__class__.__name__})
            return
        metrics.add_metric(name="Parked", unit=MetricUnit.Count, value=1)
        logger.warning("delivery parked for replay", extra={"message_id": message_id})

    def _prefetch_secrets(self) -> None:
        """On a cold start, Secrets Manager answers while the DynamoDB client is being made (the
        wait overlaps the work); warm, the secrets are cached and this does nothing."""
        secret_ids = getattr(self.auth, "secret_ids", None)
        if secret_ids is None:
            return
        secrets.prefetch(*secret_ids())
        try:
            storage.dynamodb()
        except Exception:  # put_record reports it as it should
            pass

    @staticmethod
    def _alert(outcome: storage.Outcome, stored: dict[str, Any], now: datetime) -> None:
        from billing_webhooks import alerts

        if outcome is storage.Outcome.STORED:
            claim = stored["alert_claim"]  # written already claimed: no extra call
        elif stored.get("alert_status") == alerts.PENDING:
            claim = alerts.claim(stored, now)  # only if the lease expired
        else:
            return
        if claim:
            message_id = alerts.publish(stored, claim)
            metrics.add_metric(name="AlertsPublished", unit=MetricUnit.Count, value=1)
            logger.info("alert published", extra={"message_id": message_id})
