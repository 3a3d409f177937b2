"""billing-webhooks reads the deployed stack's own tables: found through CloudFormation."""

import os

import boto3
import pytest
from botocore.stub import Stubber

from tools import cli


def _referenced_resources() -> list[str]:
    from local import template

    resources = set(template.load()["Resources"])
    variables = template.load()["Globals"]["Function"]["Environment"]["Variables"].values()
    return [value["Ref"] for value in variables if isinstance(value, dict) and value.get("Ref") in resources]


def _stack(monkeypatch, resources: dict[str, str]) -> Stubber:
    client = boto3.client(
        "cloudformation", region_name="eu-central-1", aws_access_key_id="x", aws_secret_access_key="x"
    )
    stubber = Stubber(client)
    stubber.add_response(
        "list_stack_resources",
        {
            "StackResourceSummaries": [
                {
                    "LogicalResourceId": name,
                    "PhysicalResourceId": physical,
                    "ResourceType": "AWS::DynamoDB::Table",
                    "LastUpdatedTimestamp": "2026-11-25T00:00:00Z",
                    "ResourceStatus": "UPDATE_COMPLETE",
                }
                for name, physical in resources.items()
            ]
        },
        {"StackName": "bitrix24-billing-webhooks"},
    )
    monkeypatch.setattr(boto3, "client", lambda *args, **kwargs: client)
    monkeypatch.setattr(os, "environ", {})  # what the CLI sets stays out of the other tests' environment
    return stubber


def test_the_deployed_stack_named_in_samconfig_gives_the_cli_its_tables(monkeypatch):
    resources = {name: f"prod-{name}-1A" for name in _referenced_resources()}
    resources |= {
        "NotificationsTable": "prod-NotificationsTable-1A",
        "AccountsTable": "prod-AccountsTable-2B",
        "InstallationsTable": "prod-InstallationsTable-3C",
    }
    with _stack(monkeypatch, resources):
        cli.use_deployed_stack(None, "eu-central-1")
    assert os.environ["TABLE_NAME"] == "prod-NotificationsTable-1A"
    assert os.environ["ACCOUNTS_TABLE_NAME"] == "prod-AccountsTable-2B"
    assert os.environ["INSTALLATIONS_TABLE_NAME"] == "prod-InstallationsTable-3C"
    assert os.environ["AWS_DEFAULT_REGION"] == "eu-central-1"


def test_a_stack_without_the_products_resources_is_said_in_one_line_not_a_traceback(monkeypatch, capsys):
    # A stack rehearsed against moto (no SAM transform) holds a few tables and no function.
    with _stack(monkeypatch, {"NotificationsTable": "rehearsed-NotificationsTable"}):
        assert cli.main(["accounts", "show", "504"]) == 2
    said = capsys.readouterr().err.strip().splitlines()
    assert len(said) == 1 and "holds no" in said[0] and "--local" in said[0], said


def test_the_cli_refuses_what_it_cannot_read_with_a_usage_line(capsys):
    with pytest.raises(SystemExit):
        cli.main(["accounts"])
    assert "usage: billing-webhooks" in capsys.readouterr().err


def test_help_describes_every_command(capsys):
    for argv, commands in (
        (["--help"], ("accounts", "portals", "entitlements", "links")),
        (["accounts", "--help"], ("show", "history", "invoices", "products", "balances")),
        (["portals", "--help"], ("show", "sync")),
        (["links", "--help"], ("set", "clear")),
    ):
        with pytest.raises(SystemExit):
            cli.main(argv)
        shown = capsys.readouterr().out
        for command in commands:  # each listed with a line saying what it does
            [line] = [line for line in shown.splitlines() if line.strip().startswith(command + " ")]
            assert len(line.split(maxsplit=1)) == 2, (argv, line)


def test_output_cut_short_by_its_reader_ends_quietly():
    """`billing-webhooks … | head -1`: the reader stops reading; no BrokenPipeError traceback.
    (argparse's own --help already swallows it: the command here prints a long answer.)"""
    import sys

    from tests.conftest import run_into_a_closed_pipe

    long_answer = "from tools import cli; cli._main = lambda argv: print('a line of a long answer\\n' * 100_000) or 0"
    done = run_into_a_closed_pipe([sys.executable, "-c", f"import sys; {long_answer}; sys.exit(cli.main([]))"])
    assert done.returncode == 0 and "Traceback" not in done.stderr and "BrokenPipe" not in done.stderr, done.stderr


def test_a_portal_linked_to_an_account_nothing_has_named_yet_reads_so_not_none():
    answer = {
        "member_id": "a223c6b3710f85df22e9377d6c4f7553",
        "entitled": True,
        "reason": "paid",
        "until": "2027-01-01T00:00:00.000Z",
        "grace_until": None,
        "licence": {"state": "active", "source": "app.info", "as_of": "2026-12-01T00:00:00.000Z"},
        "account": {"account_id": 999999, "state": None, "overdue_invoices": [], "trial": None},
        "as_of": "2026-12-07T00:00:00.000Z",
    }
    text = cli._entitlement_text(answer)
    assert "account 999999: no notification has named it yet" in text and "None" not in text


@pytest.mark.parametrize(
    ("outcome", "state", "status"),
    [
        ("ok", "active", 0),
        ("ok", "trial", 0),
        ("ok", "expired", 4),
        ("ok", "trial_ended", 4),
        ("unpaid", "active", 4),
        ("unreachable", "active", 3),
        ("tokens in doubt", "active", 3),
        ("failed", "active", 3),
        ("not vouched", "active", 3),
    ],
)
def test_portals_sync_exits_nonzero_when_the_portal_could_not_be_checked_or_is_unpaid(outcome, state, status):
    assert cli._sync_status({"outcome": outcome}, {"licence": {"state": state}}) == status


def test_money_is_printed_as_the_answer_writes_it_never_as_a_float(monkeypatch, capsys):
    from decimal import Decimal

    monkeypatch.setattr(cli, "attach", lambda: None)
    answer = {"amount": Decimal("2E+1"), "balance": Decimal("20.5"), "debt": Decimal("0.10")}
    monkeypatch.setattr(cli, "_answer", lambda args: (answer, lambda shown: " ".join(map(str, shown.values()))))
    assert cli.main(["accounts", "show", "504", "--local"]) == 0
    assert capsys.readouterr().out.strip() == "20 20.5 0.10"
