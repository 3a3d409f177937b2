"""billing-webhooks: where each customer account stands, from a prompt.

    billing-webhooks accounts show 504
    billing-webhooks accounts history 504 --type UnPaidInvoice [--limit 20] [--cursor C]
    billing-webhooks portals show <member_id>

Reads the deployed stack named in samconfig.toml (its tables, found through CloudFormation) with
your AWS credentials, or with --local the running `make dev` stack (DYNAMODB_LOCAL_PORT,
MOTO_PORT). Readable tables by default; --json prints exactly what the read API answers, since
both call the same functions (billing_webhooks/http/reads.py).
"""

import argparse
import json
import os
import sys
import tomllib
from typing import Any

from local import template

SAMCONFIG = template.ROOT / "samconfig.toml"


def use_deployed_stack(stack_name: str | None, region: str | None) -> None:
    """The functions' environment as the deployed stack resolves it: every resource's physical id."""
    import boto3

    config = tomllib.loads(SAMCONFIG.read_text()).get("default", {})
    saved = {**config.get("global", {}).get("parameters", {}), **config.get("deploy", {}).get("parameters", {})}
    stack_name = stack_name or saved["stack_name"]
    region = region or saved.get("region") or os.environ.get("AWS_REGION") or os.environ.get("AWS_DEFAULT_REGION")
    cloudformation = boto3.client("cloudformation", region_name=region)
    ids = {summary["LogicalResourceId"]: summary.get("PhysicalResourceId", "")
           for page in cloudformation.get_paginator("list_stack_resources").paginate(StackName=stack_name)
           for summary in page["StackResourceSummaries"]}
    os.environ.update({name: value for name, value in template.global_environment(ids).items()
                       if not name.startswith("AWS_ENDPOINT_URL_")})
    if region:
        os.environ["AWS_DEFAULT_REGION"] = region
    os.environ.setdefault("POWERTOOLS_METRICS_DISABLED", "true")
    os.environ["POWERTOOLS_LOG_LEVEL"] = "ERROR"
    template.use_layer()


def _table(rows: list[dict[str, Any]], columns: list[str]) -> str:
    if not rows:
        return "  (none)"
    cells = [[("" if row.get(column) is None else str(row.get(column))) for column in columns] for row in rows]
    widths = [max(len(column), *(len(line[index]) for line in cells)) for index, column in enumerate(columns)]
    lines = ["  " + "  ".join(column.ljust(width) for column, width in zip(columns, widths))]
    lines += ["  " + "  ".join(cell.ljust(width) for cell, width in zip(line, widths)) for line in cells]
    return "\n".join(line.rstrip() for line in lines)


def _account_text(view: dict[str, Any]) -> str:
    state, trial = view["state"] or {}, view["trial"]
    lines = [f"Account {view['account_id']} ({view['account_code']}), {view['currency']}, {view['language']}",
             f"State: {state.get('state', 'unknown')} since {state.get('date_from', '?')}"
             + (f" until {state['date_to']}" if state.get("date_to") else ""),
             "Trial: " + (f"{trial['days_left']} days left, ends {trial['ends_on']}" if trial else "none"),
             "", "Invoices:"]
    invoices = [{"invoice_id": item["invoice_id"], "status": item["status"],
                 "issued": (item["issued"] or {}).get("date_from"),
                 "days_not_paid": (item["unpaid"] or {}).get("days_not_paid"),
                 "blocking_on": (item["unpaid"] or {}).get("blocking_on"),
                 "paid_at": (item["paid"] or {}).get("paid_at")} for item in view["invoices"]]
    lines += [_table(invoices, ["invoice_id", "status", "issued", "days_not_paid", "blocking_on", "paid_at"]), "",
              "Products:", _table(view["products"], ["sold_product_id", "product_name", "state", "date_from", "date_to"]),
              "", "Balances:", _table(view["balances"], ["name", "value", "as_of"])]
    return "\n".join(lines)


def _history_text(page: dict[str, Any]) -> str:
    text = _table(page["notifications"], ["event_time", "notification_type", "notification_id", "code", "alert_status"])
    return text + (f"\n\nmore: --cursor {page['cursor']}" if page["cursor"] else "")


def _portal_text(portal: dict[str, Any]) -> str:
    licence = portal["licence"]
    return "\n".join([
        f"Portal {portal['domain']} ({portal['member_id']}): {portal['status']}, app version {portal['app_version']}",
        f"Licence: {licence['status']}, payment expired {licence['payment_expired']}, {licence['days']} days, "
        f"paid until {licence['paid_until']}",
        f"  from {licence['source']} as of {licence['as_of']}",
    ])


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="billing-webhooks", description=__doc__.splitlines()[0])
    parser.add_argument("--local", action="store_true", help="the running `make dev` stack")
    parser.add_argument("--json", action="store_true", help="exactly what the read API answers")
    parser.add_argument("--stack-name", help="default: samconfig.toml's")
    parser.add_argument("--region", help="default: samconfig.toml's, or AWS_REGION")
    kinds = parser.add_subparsers(dest="kind", required=True)
    account_commands = kinds.add_parser("accounts").add_subparsers(dest="command", required=True)
    account_commands.add_parser("show").add_argument("account_id")
    history = account_commands.add_parser("history")
    history.add_argument("account_id")
    history.add_argument("--type", dest="notification_type")
    history.add_argument("--limit")
    history.add_argument("--cursor")
    kinds.add_parser("portals").add_subparsers(dest="command", required=True).add_parser("show").add_argument("member_id")
    args = parser.parse_args(argv)

    if args.local:
        from local.attach import attach

        attach()
    else:
        use_deployed_stack(args.stack_name, args.region)
    from billing_webhooks.errors import WebhookError
    from billing_webhooks.http import reads
    from billing_webhooks.http.responses import problem_document

    try:
        if args.kind == "portals":
            answer, text = reads.portal(args.member_id), _portal_text
        elif args.command == "show":
            answer, text = reads.account(args.account_id), _account_text
        else:
            answer = reads.history(args.account_id, notification_type=args.notification_type, limit=args.limit,
                                   cursor=args.cursor)
            text = _history_text
    except WebhookError as error:
        print(reads.to_json(problem_document(error)) if args.json else f"{error.title}: {error.detail}",
              file=sys.stdout if args.json else sys.stderr)
        return 1
    print(reads.to_json(answer) if args.json else text(json.loads(reads.to_json(answer))))
    return 0


if __name__ == "__main__":
    sys.exit(main())
