"""`make redrive-alerts`: publish the alerts `make dev` left pending (a first attempt that stalled
or failed, its lease run out), as AlertRedriveFunction does every 5 minutes in AWS. Start it
while `make dev` runs."""

from local import template
from local.attach import attach


def main() -> None:
    attach()
    template.use_layer()
    from billing_webhooks.jobs.alert_redrive import redrive

    result = redrive()
    print(f"{result['published']} alert(s) published again, {result['failed']} failed (still pending)")


if __name__ == "__main__":
    main()
