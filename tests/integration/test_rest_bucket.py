"""Bitrix24 drains each portal's REST requests through a leaky bucket (2 a second, a burst of 50;
over it: 503 QUERY_LIMIT_EXCEEDED). The bucket is shared by every container that calls the
portal (data/rest_buckets.py); the fake Bitrix24 counts what would have overflowed."""

import threading
import time

from local import samples
from local.fake_bitrix24 import Portal

DOMAIN = "busy.bitrix24.com"


def test_no_portals_bucket_overflows_however_many_containers_call_it_at_once(stack):
    from billing_webhooks.data import bitrix24

    portal = Portal("busy-access", samples.APP_CODE, member_id="busy-member")
    stack.bitrix24.portals[DOMAIN] = portal
    url = bitrix24.app_info_url(DOMAIN, f"https://{DOMAIN}/rest/")
    failures: list[Exception] = []

    def container() -> None:  # each thread as a container of its own: no memory shared but the table
        for _ in range(15):
            try:
                bitrix24.read_app_info(url, "busy-access")
            except Exception as error:  # noqa: BLE001 (counted: the assertion names it)
                failures.append(error)

    started = time.monotonic()
    containers = [threading.Thread(target=container) for _ in range(4)]
    for thread in containers:
        thread.start()
    for thread in containers:
        thread.join()
    assert failures == [] and portal.calls.get("app.info") == 60
    assert portal.calls.get("over_bucket", 0) == 0
    assert time.monotonic() - started >= 6  # 45 places at once, then 2 a second
