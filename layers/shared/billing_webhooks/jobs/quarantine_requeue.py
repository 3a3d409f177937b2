"""QuarantineRequeueFunction, invoked by hand once a model is fixed (`make replay-quarantine`):
every quarantined delivery back on the rescue queue, where the replay job runs it through its
function again. One still refused goes back to quarantine, in the place in its sender's count it
gave back when requeued (data/quarantine.py).
"""

import json

from billing_webhooks.data import quarantine
from billing_webhooks.recovery import parcels
from billing_webhooks.settings import settings


def requeue_quarantined() -> int:
    """Every quarantined delivery back on the rescue queue (once its model is fixed); how many.
    One still refused goes back to quarantine when it is replayed."""
    count = 0
    for kept in quarantine.parcels():
        parcels.queue().send_message(
            QueueUrl=settings().rescue_queue_url,
            MessageBody=json.dumps(kept.parcel, ensure_ascii=False, separators=(",", ":")),
        )
        quarantine.requeued(kept)
        count += 1
    return count
