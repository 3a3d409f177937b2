"""billing-webhooks: where each customer account stands, from a prompt.

    billing-webhooks accounts show 504
    billing-webhooks accounts invoices 504 [--status unpaid] [--limit 20] [--cursor C]
    billing-webhooks accounts products 504 / accounts balances 504 (same paging)
    billing-webhooks accounts history 504 --type UnPaidInvoice [--limit 20] [--cursor C]
    billing-webhooks portals show <member_id>
    billing-webhooks portals sync <member_id>   (ask its app.info now; then show it)
    billing-webhooks entitlements show <member_id>
    billing-webhooks links set <member_id> <account_id> / links clear <member_id>

Reads the deployed stack named in samconfig.toml (its tables, found through CloudFormation) with
your AWS credentials, or with --local the running `make dev` stack (wherever it listens). Readable
tables by default; --json prints exactly what the read API answers, since both call the same
functions (billing_webhooks/http/reads.py). Options may stand anywhere on the line.
"""

import argparse
import json
import os
import sys
import tomllib
from decimal import Decimal
from typing import Any

from local import template
from local.attach import NoDevStack, attach

SAMCONFIG = template.ROOT / "samconfig.toml"


class StackNotFound(RuntimeError):
    """The stack to read cannot be reached: the message says why, in one line."""


def use_deployed_stack(stack_name: str | None, region: str | None) -> dict[str, str]:
    """The functions' environment as the deployed stack resolves it; every resource's physical id."""
    import boto3
    from botocore.exceptions import BotoCoreError, ClientError, NoCredentialsError, NoRegionError

    config = tomllib.loads(SAMCONFIG.read_text()).get("default", {})
    saved = {**config.get("global", {}).get("parameters", {}), **config.get("deploy", {}).get("parameters", {})}
    stack_name = stack_name or saved.get("stack_name", "bitrix24-billing-webhooks")
    region = region or saved.get("region") or os.environ.get("AWS_REGION") or os.environ.get("AWS_DEFAULT_REGION")
    try:
        cloudformation = boto3.client("cloudformation", region_name=region)
        ids = {
            summary["LogicalResourceId"]: summary.get("PhysicalResourceId", "")
            for page in cloudformation.get_paginator("list_stack_resources").paginate(StackName=stack_name)
            for summary in page["StackResourceSummaries"]
        }
    except NoRegionError:
        raise StackNotFound(
            "no AWS region: pass --region, set AWS_REGION, or deploy once (make deploy saves it); "
            "--local reads the running make dev stack"
        ) from None
    except NoCredentialsError:
        raise StackNotFound(
            f"no AWS credentials to read stack {stack_name} in {region}: configure them "
            "(aws configure, AWS_PROFILE), or use --local for the running make dev stack"
        ) from None
    except ClientError as error:
        raise StackNotFound(
            f"stack {stack_name} in {region}: {error.response['Error'].get('Message', error)}"
        ) from None
    except BotoCoreError as error:
        raise StackNotFound(f"stack {stack_name} in {region} cannot be reached: {error}") from None
    resources = set(template.load()["Resources"])
    missing = sorted(
        str(value["Ref"])
        for value in template.load()["Globals"]["Function"]["Environment"]["Variables"].values()
        if isinstance(value, dict) and value.get("Ref") in resources and not ids.get(value["Ref"])
    )
    if missing:  # a stack deployed without the SAM transform (a moto rehearsal), or another stack
        raise StackNotFound(
            f"stack {stack_name} in {region} holds no {', '.join(missing[:3])}{' …' if len(missing) > 3 else ''}: "
            "it is not this product's stack as AWS deploys it (a rehearsal against moto has none); "
            "pass --stack-name, or use --local for the running make dev stack"
        )
    os.environ.update(
        {
            name: value
            for name, value in template.global_environment(ids).items()
            if not name.startswith("AWS_ENDPOINT_URL_")
        }
    )
    if region:
        os.environ["AWS_DEFAULT_REGION"] = region
    os.environ.setdefault("POWERTOOLS_METRICS_DISABLED", "true")
    os.environ["POWERTOOLS_LOG_LEVEL"] = "ERROR"
    template.use_layer()
    return ids


def _table(rows: list[dict[str, Any]], columns: list[str]) -> str:
    if not rows:
        return "  (none)"
    cells = [[("" if row.get(column) is None else str(row.get(column))) for column in columns] for row in rows]
    widths = [max(len(column), *(len(line[index]) for line in cells)) for index, column in enumerate(columns)]
    lines = ["  " + "  ".join(column.ljust(width) for column, width in zip(columns, widths, strict=False))]
    lines += ["  " + "  ".join(cell.ljust(width) for cell, width in zip(line, widths, strict=False)) for line in cells]
    return "\n".join(line.rstrip() for line in lines)


def _state_line(state: dict[str, Any] | None) -> str:
    if not state:
        return "State: not told yet (no AccountStateChange)"
    return (
        f"State: {state.get('state')}"
        + (f" since {state['date_from']}" if state.get("date_from") else "")
        + (f" until {state['date_to']}" if state.get("date_to") else "")
    )


def _invoice_rows(invoices: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [
        {
            "invoice_id": item["invoice_id"],
            "status": item["status"],
            "issued": (item["issued"] or {}).get("date_from"),
            "days_not_paid": (item["unpaid"] or {}).get("days_not_paid"),
            "blocking_on": (item["unpaid"] or {}).get("blocking_on"),
            "paid_at": (item["paid"] or {}).get("paid_at"),
        }
        for item in invoices
    ]


INVOICE_COLUMNS = ["invoice_id", "status", "issued", "days_not_paid", "blocking_on", "paid_at"]
PRODUCT_COLUMNS = ["sold_product_id", "product_name", "state", "date_from", "date_to"]
BALANCE_COLUMNS = ["name", "value", "as_of"]


def _more(view: dict[str, Any], name: str, command: str) -> str:
    shown, total = len(view[name]), view["counts"][name]
    if view["cursors"][name] is None:
        return ""
    return f"\n  ({shown} of {total}; more: billing-webhooks accounts {command} --cursor {view['cursors'][name]})"


def _account_text(view: dict[str, Any]) -> str:
    trial, account = view["trial"], view["account_id"]
    lines = [
        f"Account {account} ({view['account_code']}), {view['currency']}, {view['language']}",
        _state_line(view["state"]),
        "Trial: " + (f"{trial['days_left']} days left, ends {trial['ends_on']}" if trial else "none"),
        "",
        f"Open invoices ({view['counts']['open_invoices']}):",
        _table(_invoice_rows(view["open_invoices"]), INVOICE_COLUMNS)
        + _more(view, "open_invoices", f"invoices {account} --status unpaid"),
        "",
        f"Invoices ({view['counts']['invoices']}):",
        _table(_invoice_rows(view["invoices"]), INVOICE_COLUMNS) + _more(view, "invoices", f"invoices {account}"),
        "",
        f"Products ({view['counts']['products']}):",
        _table(view["products"], PRODUCT_COLUMNS) + _more(view, "products", f"products {account}"),
        "",
        f"Balances ({view['counts']['balances']}):",
        _table(view["balances"], BALANCE_COLUMNS) + _more(view, "balances", f"balances {account}"),
    ]
    return "\n".join(lines)


def _listing_text(page: dict[str, Any]) -> str:
    if "invoices" in page:
        text = _table(_invoice_rows(page["invoices"]), INVOICE_COLUMNS)
    elif "products" in page:
        text = _table(page["products"], PRODUCT_COLUMNS)
    else:
        text = _table(page["balances"], BALANCE_COLUMNS)
    return text + (f"\n\nmore: --cursor {page['cursor']}" if page["cursor"] else "")


def _history_text(page: dict[str, Any]) -> str:
    text = _table(page["notifications"], ["event_time", "notification_type", "notification_id", "code", "alert_status"])
    return text + (f"\n\nmore: --cursor {page['cursor']}" if page["cursor"] else "")


def _portal_text(portal: dict[str, Any]) -> str:
    licence = portal["licence"]
    return "\n".join(
        [
            f"Portal {portal['domain']} ({portal['member_id']}): {portal['status']}, app version {portal['app_version']}",
            f"Licence: {licence['state']} since {licence['since']}"
            + (f" until {licence['until']}" if licence["until"] else ""),
            f"  STATUS {licence['status']}, PAYMENT_EXPIRED {licence['payment_expired']}, DAYS {licence['days']}, "
            f"paid until {licence['paid_until']}",
            f"  from {licence['source']} as of {licence['as_of']}",
            _sync_line(portal.get("sync") or {}),
        ]
    )


def _entitlement_text(answer: dict[str, Any]) -> str:
    account = answer["account"]
    lines = [
        f"Portal {answer['member_id']}: {'entitled' if answer['entitled'] else 'NOT entitled'} ({answer['reason']})"
        + (f" until {answer['until']}" if answer["until"] else "")
        + (f"; grace until {answer['grace_until']}" if answer["grace_until"] else ""),
        f"  licence {answer['licence']['state']} (from {answer['licence']['source']} as of "
        f"{answer['licence']['as_of']})",
        "  account "
        + (
            (
                f"{account['account_id']}: {account['state']}, overdue invoices {account['overdue_invoices'] or 'none'}"
                if account["state"] is not None
                else f"{account['account_id']}: no notification has named it yet (its state unknown)"
            )
            if account
            else "not linked"
        ),
        f"  as of {answer['as_of']}",
    ]
    return "\n".join(lines)


def _more_line(answer: dict[str, Any]) -> list[str]:
    return [f"more: --cursor {answer['cursor']}"] if answer.get("cursor") else []


def _portal_list_text(answer: dict[str, Any]) -> str:
    if answer["list"] == "link-conflicts":
        return _conflicts_text({"conflicts": answer["portals"], "cursor": answer["cursor"]})
    lines = [
        "  ".join(f"{name} {value}" for name, value in portal.items() if value is not None and name != "member_id")
        for portal in answer["portals"]
    ]
    shown = [f"{portal['member_id']}  {line}" for portal, line in zip(answer["portals"], lines, strict=True)]
    return "\n".join((shown or [f"No portal is {answer['list'].replace('-', ' ')}."]) + _more_line(answer))


def _story_text(answer: dict[str, Any]) -> str:
    lines = [f"Portal {answer['domain']} ({answer['member_id']}), in time order:"]
    for line in answer["story"]:
        data = line.get("data") or {}
        said = ", ".join(f"{name} {value}" for name, value in data.items() if value not in (None, "")) if data else ""
        lines.append(f"  {line['at']}  {line['what']}" + (f" ({said})" if said else ""))
    now = answer.get("entitlement")
    if now:
        lines.append(
            f"Now: {'entitled' if now['entitled'] else 'NOT entitled'} ({now['reason']}); "
            f"{answer['entitlement_changes_told']} change(s) told; linked account {answer['linked_account'] or 'none'}"
        )
    return "\n".join(lines)


def _quarantine_list_text(answer: dict[str, Any]) -> str:
    lines = [
        f"{kept['quarantine_id']}  {kept.get('route')}  received {kept.get('received_at')}"
        for kept in answer["quarantine"]
    ]
    return "\n".join((lines or ["The quarantine is empty."]) + _more_line(answer))


def _quarantine_text(answer: dict[str, Any]) -> str:
    errors = [f"  {error.get('field', '')}: {error.get('message', '')}" for error in answer["errors"]]
    shown = answer["body"] + ("…" if answer["body_length"] > len(answer["body"]) else "")
    return "\n".join(
        [
            f"Quarantined {answer['quarantine_id']}: {answer['route']} ({answer['function']}),"
            f" received {answer['received_at']}",
            "Refused because:",
            *errors,
            f"Body ({answer['body_length']} characters):",
            shown,
        ]
    )


def _conflicts_text(answer: dict[str, Any]) -> str:
    lines = [
        f"Portal {conflict['member_id']}: linked to account {conflict['linked_to']} ({conflict['link_source']});"
        f" also named by account{'s' if len(conflict['also_named_by']) > 1 else ''} "
        + ", ".join(str(account) for account in conflict["also_named_by"])
        for conflict in answer["conflicts"]
    ] or ["No link conflicts: no account's code names a portal another account decides."]
    lines += _more_line(answer)
    lines.append("Settle one with `links set <member_id> <account_id>` or `links clear <member_id>`.")
    return "\n".join(lines)


def _sync_line(sync: dict[str, Any]) -> str:
    if not sync.get("reachable", True):
        return (
            f"Sync: unreachable since {sync['unreachable_since']} ({sync['unreachable_because']}): "
            "it needs a reinstall or an update of the app"
        )
    return (
        f"Sync: last checked {sync.get('last_checked_at') or 'never'} ({sync.get('last_outcome') or '-'}), "
        f"next {sync.get('next_check_at') or 'not scheduled'}"
    )


def sync_portal(member_id: str, function_name: str | None) -> dict[str, Any]:
    """Ask the portal's app.info now: through PortalSyncFunction in AWS (its role alone may open
    the tokens), in this process on the local stack."""
    if function_name is None:
        from billing_webhooks.jobs.portal_sync import sync_now

        return sync_now([member_id])[0]
    import boto3

    answer = boto3.client("lambda").invoke(FunctionName=function_name, Payload=json.dumps({"member_ids": [member_id]}))
    result = json.loads(answer["Payload"].read() or b"{}")
    if answer.get("FunctionError"):
        raise StackNotFound(f"PortalSyncFunction failed: {str(result.get('errorMessage', result))[:200]}")
    return result["portals"][0]


def _parser() -> argparse.ArgumentParser:
    # The shared options are accepted anywhere on the line, as the AWS CLI's are
    # (`accounts show 504 --local --json`); SUPPRESS keeps a later level from resetting them.
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--local", action="store_true", default=argparse.SUPPRESS, help="the running `make dev` stack")
    common.add_argument(
        "--json", action="store_true", default=argparse.SUPPRESS, help="exactly what the read API answers"
    )
    common.add_argument("--stack-name", default=argparse.SUPPRESS, help="default: samconfig.toml's")
    common.add_argument("--region", default=argparse.SUPPRESS, help="default: samconfig.toml's, or AWS_REGION")
    paging = argparse.ArgumentParser(add_help=False)  # a listing's page: how many, and where it goes on
    paging.add_argument("--limit", help="how many at most (default 50)")
    paging.add_argument("--cursor", help="where the page goes on (the last page printed it)")
    parser = argparse.ArgumentParser(prog="billing-webhooks", description=__doc__.splitlines()[0], parents=[common])
    kinds = parser.add_subparsers(dest="kind", required=True)
    account_commands = kinds.add_parser(
        "accounts", parents=[common], help="a billing account: its view, notifications, invoices, products, balances"
    ).add_subparsers(dest="command", required=True)
    account_commands.add_parser("show", parents=[common], help="the account's view").add_argument("account_id")
    history = account_commands.add_parser("history", parents=[common], help="its notifications, newest first")
    history.add_argument("--type", dest="notification_type")
    for name in ("invoices", "products", "balances"):
        listing = account_commands.add_parser(name, parents=[common], help=f"its {name}, a page at a time")
        if name == "invoices":
            listing.add_argument("--status", choices=("issued", "unpaid", "paid"))
    for command in ("history", "invoices", "products", "balances"):
        listing = account_commands.choices[command]
        listing.add_argument("account_id")
        listing.add_argument("--limit")
        listing.add_argument("--cursor")
    portals = kinds.add_parser(
        "portals", parents=[common], help="a portal's installation, licence and licence sync"
    ).add_subparsers(dest="command", required=True)
    portals.add_parser("show", parents=[common], help="its installation and licence").add_argument("member_id")
    listing = portals.add_parser(
        "list", parents=[common, paging], help="the portals an operator watches, a page at a time"
    )
    which = listing.add_mutually_exclusive_group(required=True)
    for name, said in (
        ("unreachable", "Bitrix24 refused its tokens, or they are in doubt"),
        ("tokens-in-doubt", "a refresh's answer was lost: its administrator reinstalls or updates"),
        ("not-vouched", "installs Bitrix24's OAuth server has not vouched for"),
        ("in-grace", "entitled only by a grace period now"),
        ("link-conflicts", "another account's code names it while one decides it"),
    ):
        which.add_argument(f"--{name}", dest="which", action="store_const", const=name, help=said)
    portals.add_parser(
        "story", parents=[common], help="its life in time order: install, payments, checks, uninstall, entitlement"
    ).add_argument("member_id")
    quarantine = kinds.add_parser(
        "quarantine", parents=[common], help="deliveries our models refused, kept to be replayed"
    ).add_subparsers(dest="command", required=True)
    quarantine.add_parser("list", parents=[common, paging], help="the kept deliveries, a page at a time")
    quarantine.add_parser("show", parents=[common], help="one kept delivery: its errors and body").add_argument(
        "quarantine_id"
    )
    portals.add_parser("sync", parents=[common], help="ask its app.info now (a licence check)").add_argument(
        "member_id"
    )
    entitlement_commands = kinds.add_parser(
        "entitlements", parents=[common], help="may a portal use the app now, and why"
    ).add_subparsers(dest="command", required=True)
    entitlement_commands.add_parser("show", parents=[common], help="its entitlement").add_argument("member_id")
    links = kinds.add_parser(
        "links", parents=[common], help="which billing account decides a portal's entitlement"
    ).add_subparsers(dest="command", required=True)
    link_set = links.add_parser("set", parents=[common], help="link the portal to an account (an operator's link wins)")
    link_set.add_argument("member_id")
    link_set.add_argument("account_id")
    links.add_parser(
        "clear", parents=[common], help="unlink the portal: no account decides it until an operator links one"
    ).add_argument("member_id")
    links.add_parser(
        "conflicts", parents=[common, paging], help="portals another account's code names while one decides them"
    )
    return parser


def _answer(args: argparse.Namespace) -> tuple[dict[str, Any], Any]:
    from billing_webhooks.http import reads

    if args.kind == "portals" and args.command == "list":
        return reads.portal_list(args.which, limit=args.limit, cursor=args.cursor), _portal_list_text
    if args.kind == "portals" and args.command == "story":
        return reads.portal_story(args.member_id), _story_text
    if args.kind == "quarantine" and args.command == "list":
        return reads.quarantine_list(limit=args.limit, cursor=args.cursor), _quarantine_list_text
    if args.kind == "quarantine":
        return reads.quarantine_show(args.quarantine_id), _quarantine_text
    if args.kind == "portals":
        return reads.portal(args.member_id), _portal_text
    if args.kind == "entitlements":
        return reads.entitlement(args.member_id), _entitlement_text
    if args.kind == "links" and args.command == "conflicts":
        return reads.link_conflicts(limit=args.limit, cursor=args.cursor), _conflicts_text
    if args.kind == "links":
        from billing_webhooks.domain import links

        reads.portal(args.member_id)  # NotFound for a portal we do not know
        if args.command == "set":
            links.link(args.member_id, reads.account_number(args.account_id))
        else:
            links.unlink(args.member_id)
        return reads.entitlement(args.member_id), _entitlement_text
    if args.command == "show":
        return reads.account(args.account_id), _account_text
    if args.command == "history":
        return reads.history(
            args.account_id, notification_type=args.notification_type, limit=args.limit, cursor=args.cursor
        ), _history_text
    return reads.listing(
        args.account_id, args.command, status=getattr(args, "status", None), limit=args.limit, cursor=args.cursor
    ), _listing_text


def main(argv: list[str] | None = None) -> int:
    try:
        status = _main(argv)
        sys.stdout.flush()  # here, where a reader gone is caught, not at exit
        return status
    except BrokenPipeError:  # `billing-webhooks … | head -1`: the reader had enough, not an error
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())  # no second error at exit
        return 0


def _main(argv: list[str] | None) -> int:
    args = _parser().parse_args(argv)
    as_json = getattr(args, "json", False)
    try:
        if getattr(args, "local", False):
            attach()
            sync_function = None
        else:
            ids = use_deployed_stack(getattr(args, "stack_name", None), getattr(args, "region", None))
            sync_function = ids.get("PortalSyncFunction")
    except (StackNotFound, NoDevStack) as error:
        print(f"billing-webhooks: {error}", file=sys.stderr)
        return 2
    from billing_webhooks.errors import WebhookError
    from billing_webhooks.http import reads
    from billing_webhooks.http.responses import problem_document

    synced: dict[str, Any] | None = None
    try:
        if args.kind == "portals" and args.command == "sync":
            synced = sync_portal(args.member_id, sync_function)
            if not as_json:
                print(f"Synced: {synced['outcome']}" + (f" ({synced['because']})" if synced.get("because") else ""))
        answer, text = _answer(args)
    except StackNotFound as error:
        print(f"billing-webhooks: {error}", file=sys.stderr)
        return 2
    except WebhookError as error:
        print(
            reads.to_json(problem_document(error)) if as_json else f"{error.title}: {error.detail}",
            file=sys.stdout if as_json else sys.stderr,
        )
        return 1
    # Read back with Decimal: money is shown as the answer writes it (20, 20.50), never as a float's 20.0.
    print(reads.to_json(answer) if as_json else text(json.loads(reads.to_json(answer), parse_float=Decimal)))
    return _sync_status(synced, answer) if synced is not None else 0


# `portals sync`'s exit status, for scripts: 0 the portal answered and its licence is active or in
# trial; 4 it answered, and the app is unpaid (its licence ended, or PAYMENT_REQUIRED); 3 it could
# not be checked (unreachable, tokens in doubt, not vouched, no tokens kept, not installed, failed).
SYNC_CHECKED, SYNC_UNCHECKED, SYNC_UNPAID = 0, 3, 4


def _sync_status(synced: dict[str, Any], portal: dict[str, Any]) -> int:
    if synced["outcome"] == "unpaid":
        return SYNC_UNPAID
    if synced["outcome"] != "ok":
        return SYNC_UNCHECKED
    return SYNC_CHECKED if portal["licence"]["state"] in ("active", "trial") else SYNC_UNPAID


if __name__ == "__main__":
    sys.exit(main())
