"""The template as SAM translates it: resources, routes, least-privilege policies."""

import fnmatch
import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from billing_webhooks.data import tokens
from billing_webhooks.domain import portal_tokens
from local.template import ROOT
from tests.conftest import HOST_ENVIRONMENT

SAM_VENV_BIN = ROOT / ".venv-sam" / "bin"
ROUTES = {
    "/bitrix24/app-payment": "AppPaymentFunction",
    "/bitrix24/app-install": "AppInstallFunction",
    "/bitrix24/app-update": "AppUpdateFunction",
    "/bitrix24/app-uninstall": "AppUninstallFunction",
    "/billing/invoice-for-new-period": "InvoiceForNewPeriodFunction",
    "/billing/invoice-for-new-product": "InvoiceForNewProductFunction",
    "/billing/unpaid-invoice": "UnPaidInvoiceFunction",
    "/billing/account-state-change": "AccountStateChangeFunction",
    "/billing/trial-reminder": "TrialReminderFunction",
    "/billing/percent-of-balance-used": "PercentOfBalanceUsedFunction",
    "/billing/product-state-change": "ProductStateChangeFunction",
    "/billing/new-payment": "NewPaymentFunction",
}
READ_ROUTES = {
    "/accounts/{account_id}": "AccountsApiFunction",
    "/accounts/{account_id}/notifications": "AccountsApiFunction",
    "/accounts/{account_id}/invoices": "AccountsApiFunction",
    "/accounts/{account_id}/products": "AccountsApiFunction",
    "/accounts/{account_id}/balances": "AccountsApiFunction",
    "/portals/{member_id}": "AccountsApiFunction",
    "/entitlements/{member_id}": "AccountsApiFunction",
}


def _sam_env() -> dict[str, str]:
    return {**HOST_ENVIRONMENT, "AWS_DEFAULT_REGION": "us-east-1", "SAM_CLI_TELEMETRY": "0"}


@pytest.fixture(scope="module")
def translated() -> dict:
    out = subprocess.run(
        [str(SAM_VENV_BIN / "python"), str(Path(__file__).with_name("translate.py")), str(ROOT / "template.yaml")],
        capture_output=True,
        text=True,
        check=True,
        env=_sam_env(),
    )
    return json.loads(out.stdout)["Resources"]


def _of_type(resources: dict, kind: str) -> dict:
    return {name: res for name, res in resources.items() if res["Type"] == kind}


def test_sam_validate_lint_passes():
    result = subprocess.run(
        [str(SAM_VENV_BIN / "sam"), "validate", "--lint"], cwd=ROOT, capture_output=True, text=True, env=_sam_env()
    )
    assert result.returncode == 0, result.stdout + result.stderr


def test_cfn_lint_is_clean():
    result = subprocess.run(
        [str(SAM_VENV_BIN / "cfn-lint"), "template.yaml"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        env=HOST_ENVIRONMENT,
    )
    assert result.returncode == 0, result.stdout + result.stderr


def test_checkov_reports_no_failed_check_and_every_skip_gives_its_reason():
    checkov = os.environ.get("CHECKOV", str(ROOT / ".venv-checkov" / "bin" / "checkov"))
    result = subprocess.run(
        [checkov, "-f", "template.yaml", "--framework", "cloudformation", "--skip-download", "-o", "json"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
        env=HOST_ENVIRONMENT,
    )
    report = json.loads(result.stdout)
    assert report["summary"]["failed"] == 0 and report["summary"]["parsing_errors"] == 0, result.stdout[-3000:]
    assert report["summary"]["passed"] > 0
    skipped = report["results"]["skipped_checks"]
    assert skipped and all(len(check["check_result"].get("suppress_comment") or "") > 30 for check in skipped)


def test_the_stage_is_throttled_and_its_access_log_never_holds_a_query_string_or_body(translated):
    [stage] = _of_type(translated, "AWS::ApiGatewayV2::Stage").values()
    settings = stage["Properties"]["DefaultRouteSettings"]
    assert settings["ThrottlingRateLimit"] > 0 and settings["ThrottlingBurstLimit"] > 0
    log_format = stage["Properties"]["AccessLogSettings"]["Format"]
    assert "$context.routeKey" in log_format
    assert not any(word in log_format for word in ("path", "querystring", "requestOverride", "body"))
    assert translated["ApiAccessLogs"]["Properties"]["RetentionInDays"] == {"Ref": "LogRetentionDays"}


def test_every_table_topic_and_secret_is_encrypted(translated):
    for name, table in _of_type(translated, "AWS::DynamoDB::Table").items():
        assert table["Properties"]["SSESpecification"]["SSEEnabled"] is True, name
    for name, topic in _of_type(translated, "AWS::SNS::Topic").items():
        assert topic["Properties"]["KmsMasterKeyId"], name
    for name, queue in _of_type(translated, "AWS::SQS::Queue").items():
        assert queue["Properties"].get("KmsMasterKeyId") or queue["Properties"].get("SqsManagedSseEnabled"), name


ALERT_FUNCTIONS = {"UnPaidInvoiceFunction", "TrialReminderFunction"}


JOBS = {
    "AlertRedriveFunction",
    "ReplayFunction",
    "QuarantineRequeueFunction",
    "AccountProjectorFunction",
    "AccountRebuildFunction",
    "LicenceSyncRunFunction",
    "PortalSyncFunction",
    "EntitlementDeadlinesFunction",
    "InstallationChangesFunction",
    "EntitlementEventsFunction",
}


def test_twelve_webhook_functions_the_jobs_and_the_reads_on_python313(translated):
    functions = _of_type(translated, "AWS::Lambda::Function")
    assert set(functions) == set(ROUTES.values()) | JOBS | {"AccountsApiFunction"}
    [layer] = _of_type(translated, "AWS::Lambda::LayerVersion")
    for name, function in functions.items():
        props = function["Properties"]
        assert props["Runtime"] == "python3.13"
        assert props["Architectures"] == [{"Ref": "Architecture"}]
        assert props["Layers"] == [{"Ref": layer}]
        assert props["Code"]["S3Key"].startswith("functions/"), name


def test_each_webhook_route_is_post_only_and_reaches_its_function(translated):
    [api] = _of_type(translated, "AWS::ApiGatewayV2::Api").values()
    paths = api["Properties"]["Body"]["paths"]
    assert set(paths) == set(ROUTES) | set(READ_ROUTES)
    for path, function in ROUTES.items():
        assert list(paths[path]) == ["post"]
        integration = paths[path]["post"]["x-amazon-apigateway-integration"]
        assert integration["payloadFormatVersion"] == "2.0"
        # Through the function's alias `live`: a deploy shifts traffic to a new version gradually.
        assert f"${{{function}Aliaslive}}" in integration["uri"]["Fn::Sub"]


# SAM's own policy for a DynamoDB stream source, on the functions that read a table's stream.
STREAM_READER = "arn:aws:iam::aws:policy/service-role/AWSLambdaDynamoDBExecutionRole"
STREAM_READERS = {"AccountProjectorFunction", "InstallationChangesFunction", "EntitlementEventsFunction"}


def _grants(translated: dict, function: str, *managed: str) -> set[tuple[str, str]]:
    role = translated[f"{function}Role"]["Properties"]
    assert sorted(role["ManagedPolicyArns"]) == sorted(
        [
            "arn:aws:iam::aws:policy/service-role/AWSLambdaBasicExecutionRole",
            "arn:aws:iam::aws:policy/AWSXrayWriteOnlyAccess",
            *managed,
        ]
    )
    statements = [s for policy in role["Policies"] for s in policy["PolicyDocument"]["Statement"]]
    assert all(s["Effect"] == "Allow" for s in statements)
    # A grant under a condition is its own grant: "dynamodb:GetItem if {...}".
    return {
        (
            action + (f" if {json.dumps(s['Condition'], sort_keys=True)}" if "Condition" in s else ""),
            json.dumps(s["Resource"]),
        )
        for s in statements
        for action in (s["Action"] if isinstance(s["Action"], list) else [s["Action"]])
    }


TABLE = json.dumps({"Fn::GetAtt": ["NotificationsTable", "Arn"]})
# TokenStoreKey's ARN, or the kept key's a reattached stack names (KeptTokenStoreKeyArn).
TOKEN_STORE_KEY = json.dumps(
    {"Fn::If": ["ReattachesTokenStoreKey", {"Ref": "KeptTokenStoreKeyArn"}, {"Fn::GetAtt": ["TokenStoreKey", "Arn"]}]}
)
PUBLISH = (
    "sns:Publish",
    json.dumps(
        {
            "Fn::Sub": [
                "arn:${AWS::Partition}:sns:${AWS::Region}:${AWS::AccountId}:${topicName}",
                {"topicName": {"Fn::GetAtt": ["AlertsTopic", "TopicName"]}},
            ]
        }
    ),
)


INSTALLATIONS = json.dumps({"Fn::GetAtt": ["InstallationsTable", "Arn"]})
PARK = ("sqs:SendMessage", json.dumps({"Fn::GetAtt": ["RescueQueue", "Arn"]}))
# Every webhook function parks and replays signed parcels, and quarantines what its model refuses.
SIGN = (
    "secretsmanager:GetSecretValue",
    json.dumps({"Fn::Sub": ["${secretArn}", {"secretArn": {"Ref": "RescueSigningSecret"}}]}),
)
# (PutItem the parcel, UpdateItem the sender's count against QuarantineCapPerSender)
QUARANTINE = {
    (action, json.dumps({"Fn::GetAtt": ["QuarantineTable", "Arn"]}))
    for action in ("dynamodb:PutItem", "dynamodb:UpdateItem")
}


def _reads_secret(secret: str) -> tuple[str, str]:
    return "secretsmanager:GetSecretValue", json.dumps({"Fn::Sub": ["${secretArn}", {"secretArn": {"Ref": secret}}]})


def test_each_billing_function_may_only_put_into_the_table_and_read_its_own_secret(translated):
    for path, function in ROUTES.items():
        if path.startswith("/bitrix24/"):
            continue
        expected = {
            ("dynamodb:PutItem", TABLE),
            _reads_secret("BillingWebhookSecret"),
            _reads_secret("BillingSigningSecret"),
            PARK,
            SIGN,
            *QUARANTINE,
        }
        if function in ALERT_FUNCTIONS:  # only these two may publish, and update the alert state
            expected |= {("dynamodb:UpdateItem", TABLE), PUBLISH}
        assert _grants(translated, function) == expected, function


# The kept pair's flags, and a parked delivery's refresh token kept beside it, with what its claim
# needs; nothing of the pair itself (domain/portal_tokens.needs_mending, vouch_later).
FLAGS_ONLY = {
    "ForAllValues:StringEquals": {"dynamodb:Attributes": list(tokens.PENDING)},
    "StringEquals": {"dynamodb:Select": "SPECIFIC_ATTRIBUTES"},
}
# Opens only what was sealed as a parked delivery's refresh token, never a kept pair.
PENDING_ONLY = {"StringEquals": {"kms:EncryptionContext:purpose": portal_tokens.PENDING_PURPOSE}}


ERASED = ("PortalTokensTable", "NotificationsTable", "EntitlementsTable")


def test_each_bitrix24_function_may_only_touch_the_installation_as_its_event_needs(translated):
    record = ("dynamodb:PutItem", TABLE)
    read, update = ("dynamodb:GetItem", INSTALLATIONS), ("dynamodb:UpdateItem", INSTALLATIONS)
    # Install and update seal the portal's access token in a parcel, for the replay that binds.
    seal = {
        (action, json.dumps({"Fn::GetAtt": ["PortalTokenKey", "Arn"]})) for action in ("kms:Encrypt", "kms:Decrypt")
    }
    # ... and keep the pair Bitrix24's OAuth server issues when it vouches: sealed, never opened;
    # whether the kept pair needs mending (refused, in doubt, missing) is read, never its tokens.
    seal |= {
        (
            f"dynamodb:GetItem if {json.dumps(FLAGS_ONLY, sort_keys=True)}",
            json.dumps({"Fn::GetAtt": ["PortalTokensTable", "Arn"]}),
        ),
        ("dynamodb:UpdateItem", json.dumps({"Fn::GetAtt": ["PortalTokensTable", "Arn"]})),
        ("kms:Encrypt", TOKEN_STORE_KEY),
        (
            f"kms:Decrypt if {json.dumps(PENDING_ONLY, sort_keys=True)}",
            TOKEN_STORE_KEY,
        ),
        # ... and take a place in the portal's REST bucket before each request to it.
        ("dynamodb:UpdateItem", json.dumps({"Fn::GetAtt": ["RestBucketsTable", "Arn"]})),
    }
    expected = {
        # The fallback map: a portal installed by hand is not taken over by an install naming it.
        # ... and the app's OAuth credentials: Bitrix24's OAuth server confirms the member_id.
        "AppInstallFunction": {
            record,
            read,
            ("dynamodb:PutItem", INSTALLATIONS),
            _reads_secret("Bitrix24PortalSecret"),
            _reads_secret("Bitrix24AppCredentials"),
        }
        | seal,
        "AppUpdateFunction": {
            record,
            read,
            update,
            _reads_secret("Bitrix24PortalSecret"),
            _reads_secret("Bitrix24AppCredentials"),
        }
        | seal,
        "AppPaymentFunction": {record, read, update, _reads_secret("Bitrix24PortalSecret")},
        # ... and an uninstall erases: the kept tokens, and with CLEAN the portal's records and entitlement.
        "AppUninstallFunction": {
            record,
            read,
            update,
            _reads_secret("Bitrix24PortalSecret"),
            (
                "dynamodb:DeleteItem",
                json.dumps([{"Fn::GetAtt": [name, "Arn"]} for name in ERASED]),
            ),
            ("dynamodb:Query", json.dumps({"Fn::Sub": "${NotificationsTable.Arn}/index/by-account"})),
        },
    }
    for function, grants in expected.items():
        assert _grants(translated, function) == grants | {PARK, SIGN, *QUARANTINE}, function


def test_the_installations_table_is_keyed_by_member_id_with_pitr_and_encryption(translated):
    table = translated["InstallationsTable"]["Properties"]
    assert table["KeySchema"] == [{"AttributeName": "member_id", "KeyType": "HASH"}]
    assert table["PointInTimeRecoverySpecification"] == {"PointInTimeRecoveryEnabled": True}
    assert table["SSESpecification"]["SSEEnabled"] is True
    assert translated["InstallationsTable"]["DeletionPolicy"] == "Retain"


def test_the_redrive_may_only_query_the_pending_index_update_and_publish(translated):
    assert _grants(translated, "AlertRedriveFunction") == {
        ("dynamodb:Query", json.dumps({"Fn::Sub": "${NotificationsTable.Arn}/index/pending-alerts"})),
        ("dynamodb:UpdateItem", TABLE),
        PUBLISH,
    }
    rule = translated["AlertRedriveFunctionEvery5Minutes"]
    assert rule["Properties"]["ScheduleExpression"] == "rate(5 minutes)"


def test_the_replay_may_only_read_the_rescue_queue_dead_letter_and_invoke_the_webhook_functions(translated):
    queue = json.dumps({"Fn::GetAtt": ["RescueQueue", "Arn"]})
    dead_letters = json.dumps({"Fn::GetAtt": ["RescueDeadLetterQueue", "Arn"]})
    invoke = {
        ("lambda:InvokeFunction", json.dumps([{"Fn::GetAtt": [function, "Arn"]} for function in ROUTES.values()]))
    }
    grants = _grants(translated, "ReplayFunction")
    assert {grant for grant in grants if grant[0] != "lambda:InvokeFunction"} == {
        ("sqs:ReceiveMessage", queue),
        ("sqs:DeleteMessage", queue),
        ("sqs:ChangeMessageVisibility", queue),
        ("sqs:SendMessage", dead_letters),
    }
    [(_, resources)] = [grant for grant in grants if grant[0] == "lambda:InvokeFunction"]
    assert sorted(json.loads(resources), key=json.dumps) == sorted(json.loads(next(iter(invoke))[1]), key=json.dumps)
    assert translated["ReplayFunctionEvery5Minutes"]["Properties"]["ScheduleExpression"] == "rate(5 minutes)"


def test_the_rescue_queue_keeps_parcels_14_days_and_moves_poison_ones_to_a_dead_letter_queue(translated):
    queue = translated["RescueQueue"]["Properties"]
    assert queue["MessageRetentionPeriod"] == 14 * 24 * 3600 and queue["KmsMasterKeyId"]
    assert queue["RedrivePolicy"]["deadLetterTargetArn"] == {"Fn::GetAtt": ["RescueDeadLetterQueue", "Arn"]}
    # A webhook function's retries and its park fit in its timeout; the replay's Invoke waits longer.
    assert translated["NewPaymentFunction"]["Properties"]["Timeout"] >= 20


def test_an_alert_email_is_optional_and_the_topic_arn_is_exported():
    from local.template import load

    template = load()
    assert template["Parameters"]["AlertEmail"]["Default"] == ""
    subscription = template["Resources"]["AlertEmailSubscription"]
    assert subscription["Condition"] == "HasAlertEmail" and subscription["Properties"]["Protocol"] == "email"
    assert "Export" in template["Outputs"]["AlertsTopicArn"]


def test_the_table_is_keyed_by_notification_with_an_account_index_pitr_and_encryption(translated):
    table = translated["NotificationsTable"]["Properties"]
    assert table["KeySchema"] == [
        {"AttributeName": "notification_id", "KeyType": "HASH"},
        {"AttributeName": "notification_type", "KeyType": "RANGE"},
    ]
    indexes = {
        index["IndexName"]: [k["AttributeName"] for k in index["KeySchema"]]
        for index in table["GlobalSecondaryIndexes"]
    }
    assert indexes == {
        "by-account": ["account_key", "event_time"],
        "pending-alerts": ["alert_pending", "alert_lease_until"],
    }
    assert table["BillingMode"] == "PAY_PER_REQUEST"
    assert table["PointInTimeRecoverySpecification"] == {"PointInTimeRecoveryEnabled": True}
    assert table["SSESpecification"]["SSEEnabled"] is True
    assert translated["NotificationsTable"]["DeletionPolicy"] == "Retain"


def test_the_alert_topic_exists_and_is_encrypted(translated):
    assert translated["AlertsTopic"]["Properties"]["KmsMasterKeyId"] == "alias/aws/sns"


def test_the_layer_builds_for_the_functions_architecture():
    from local.template import load

    layer = load()["Resources"]["SharedLayer"]
    assert layer["Metadata"] == {"BuildMethod": "python3.13", "BuildArchitecture": {"Ref": "Architecture"}}
    assert layer["Properties"]["ContentUri"] == "layers/shared"
    requirements = (ROOT / "layers" / "shared" / "requirements.txt").read_text()
    assert "pydantic==" in requirements and "aws-lambda-powertools==" in requirements and "boto3" not in requirements


def test_globals_declare_empty_endpoint_placeholders_for_sam_local(translated):
    env = translated["NewPaymentFunction"]["Properties"]["Environment"]["Variables"]
    for name in ("AWS_ENDPOINT_URL_DYNAMODB", "AWS_ENDPOINT_URL_SNS", "AWS_ENDPOINT_URL_SECRETS_MANAGER"):
        assert env[name] == ""
    local_env = json.loads((ROOT / "local" / "env.json").read_text())["Parameters"]
    assert set(local_env) <= set(env), "sam local only overrides variables the template declares"


if __name__ == "__main__":
    sys.exit(pytest.main([__file__]))


def _alarmed_functions(alarms: dict, metric: str) -> list[str]:
    return [
        query["MetricStat"]["Metric"]["Dimensions"][0]["Value"]["Ref"]
        for alarm in alarms.values()
        for query in alarm["Properties"].get("Metrics", [])
        if "MetricStat" in query and query["MetricStat"]["Metric"]["MetricName"] == metric
    ]


def test_operators_are_alarmed_on_5xx_every_functions_errors_and_throttles_and_the_rescue_queues(translated):
    alarms = _of_type(translated, "AWS::CloudWatch::Alarm")
    functions = set(_of_type(translated, "AWS::Lambda::Function"))
    for metric in ("Errors", "Throttles"):
        covered = _alarmed_functions(alarms, metric)
        assert sorted(covered) == sorted(functions), metric  # each function once
    single = {
        (
            a["Properties"].get("Namespace"),
            a["Properties"].get("MetricName"),
            json.dumps(a["Properties"].get("Dimensions")),
        )
        for a in alarms.values()
    }
    assert ("AWS/ApiGateway", "5xx", json.dumps([{"Name": "ApiId", "Value": {"Ref": "HttpApi"}}])) in single
    for queue in ("RescueQueue", "RescueDeadLetterQueue"):
        dimensions = [{"Name": "QueueName", "Value": {"Fn::GetAtt": [queue, "QueueName"]}}]
        assert ("AWS/SQS", "ApproximateNumberOfMessagesVisible", json.dumps(dimensions)) in single
    for name, alarm in alarms.items():
        assert alarm["Properties"]["AlarmActions"] == [{"Ref": "OpsTopic"}], name
        assert alarm["Properties"]["TreatMissingData"] == "notBreaching", name


def _substituted(value: Any) -> Any:
    """A template value as it would be deployed: stack `billing` in account 123456789012."""
    if isinstance(value, dict) and "Fn::Sub" in value:
        text = value["Fn::Sub"]
        for name, actual in (
            ("AWS::Partition", "aws"),
            ("AWS::AccountId", "123456789012"),
            ("AWS::StackName", "billing"),
        ):
            text = text.replace("${" + name + "}", actual)
        return text
    if isinstance(value, list):
        return [_substituted(item) for item in value]
    return value


def _key_allows(policy: dict, principal: str, action: str, context: dict[str, str]) -> bool:
    """Whether a key policy alone lets `principal` (a role's ARN, path and all) call `action`
    with this encryption context: what KMS decides for the statements this template writes
    (Allow, ArnLike on aws:PrincipalArn, StringEquals on the context). A statement naming the
    account's root with no condition delegates to IAM: counted as allowing anyone."""
    for statement in policy["Statement"]:
        actions = statement["Action"] if isinstance(statement["Action"], list) else [statement["Action"]]
        if statement["Effect"] != "Allow" or not any(fnmatch.fnmatchcase(action, pattern) for pattern in actions):
            continue
        condition = statement.get("Condition", {})
        arns = _substituted(condition.get("ArnLike", {}).get("aws:PrincipalArn", "*"))
        arns = arns if isinstance(arns, list) else [arns]
        if not any(fnmatch.fnmatchcase(principal, pattern) for pattern in arns):
            continue
        wanted = condition.get("StringEquals", {})
        if all(context.get(key.removeprefix("kms:EncryptionContext:")) == value for key, value in wanted.items()):
            return True
    return False


def test_what_a_stack_delete_would_lose_for_good_is_retained_the_tables_and_the_key_that_seals_tokens(translated):
    tables = _of_type(translated, "AWS::DynamoDB::Table")
    # The REST buckets hold nothing that outlives a minute and a half (their TTL): not kept.
    assert tables.pop("RestBucketsTable")["Properties"]["TimeToLiveSpecification"]["Enabled"] is True
    assert len(tables) == 6
    for name, resource in {**tables, "TokenStoreKey": translated["TokenStoreKey"]}.items():
        assert (resource.get("DeletionPolicy"), resource.get("UpdateReplacePolicy")) == ("Retain", "Retain"), name


def test_only_the_roles_the_token_keys_policy_names_may_open_or_seal_portal_tokens(translated):
    policy = translated["TokenStoreKey"]["Properties"]["KeyPolicy"]
    roles = {
        name.removesuffix("Role"): "arn:aws:iam::123456789012:role"
        + _substituted(resource["Properties"].get("Path", "/"))
        + f"billing-{name}-ABC123"
        for name, resource in _of_type(translated, "AWS::IAM::Role").items()
    }
    pair = {"member_id": "a223c6b3710f85df22e9377d6c4f7553"}
    kept_refresh_token = {**pair, "purpose": "install-refresh-token"}
    openers = {name for name, arn in roles.items() if _key_allows(policy, arn, "kms:Decrypt", pair)}
    assert openers == {"LicenceSyncRunFunction", "PortalSyncFunction"}
    assert {name for name, arn in roles.items() if _key_allows(policy, arn, "kms:Decrypt", kept_refresh_token)} == {
        "LicenceSyncRunFunction",
        "PortalSyncFunction",
        "AppInstallFunction",
        "AppUpdateFunction",
    }
    sealers = {name for name, arn in roles.items() if _key_allows(policy, arn, "kms:Encrypt", pair)}
    assert sealers == {"LicenceSyncRunFunction", "PortalSyncFunction", "AppInstallFunction", "AppUpdateFunction"}
    # Anyone else of the account, with whatever IAM grants of their own: no crypto, no grant.
    for other in ("arn:aws:iam::123456789012:role/Admin", "arn:aws:iam::123456789012:user/ops"):
        for action in ("kms:Decrypt", "kms:Encrypt", "kms:ReEncryptFrom", "kms:GenerateDataKey", "kms:CreateGrant"):
            assert not _key_allows(policy, other, action, kept_refresh_token), (other, action)
    assert _key_allows(policy, "arn:aws:iam::123456789012:role/Admin", "kms:PutKeyPolicy", {})  # still administered


def test_the_ops_topic_key_rotates_and_lets_cloudwatch_alarms_publish(translated):
    assert translated["OpsTopic"]["Properties"]["KmsMasterKeyId"] == {"Ref": "OpsKey"}
    key = translated["OpsKey"]["Properties"]
    assert key["EnableKeyRotation"] is True
    [grant] = [s for s in key["KeyPolicy"]["Statement"] if s["Principal"] == {"Service": "cloudwatch.amazonaws.com"}]
    assert set(grant["Action"]) == {"kms:Decrypt", "kms:GenerateDataKey*"}


def test_each_route_has_its_own_throttle_budget_bitrix24_billing_and_reads_apart(translated):
    [stage] = _of_type(translated, "AWS::ApiGatewayV2::Stage").values()
    settings = stage["Properties"]["RouteSettings"]
    assert set(settings) == {f"POST {path}" for path in ROUTES} | {f"GET {path}" for path in READ_ROUTES}
    for path in ROUTES:
        budget = {"Ref": "Bitrix24RouteRateLimit" if path.startswith("/bitrix24/") else "BillingRouteRateLimit"}
        assert settings[f"POST {path}"] == {"ThrottlingRateLimit": budget, "ThrottlingBurstLimit": budget}
    for path in READ_ROUTES:  # the readers have a budget of their own too
        # The entitlement answer is asked on the vendor's users' requests: a budget of its own.
        budget = {"Ref": "EntitlementRouteRateLimit" if path.startswith("/entitlements/") else "ReadRouteRateLimit"}
        assert settings[f"GET {path}"] == {"ThrottlingRateLimit": budget, "ThrottlingBurstLimit": budget}


def test_a_429_raises_an_alarm_through_a_metric_filter_on_the_access_log(translated):
    metric_filter = translated["ApiThrottledFilter"]["Properties"]
    assert metric_filter["LogGroupName"] == {"Ref": "ApiAccessLogs"} and '"429"' in metric_filter["FilterPattern"]
    alarm = translated["ApiThrottledAlarm"]["Properties"]
    assert (alarm["Namespace"], alarm["MetricName"]) == ("BillingWebhooks", "ApiThrottled")
    assert alarm["AlarmActions"] == [{"Ref": "OpsTopic"}]


def test_every_function_logs_to_a_group_kept_for_the_retention_parameter(translated):
    functions = _of_type(translated, "AWS::Lambda::Function")
    groups = {
        group["Properties"]["LogGroupName"]["Fn::Sub"]: group["Properties"]["RetentionInDays"]
        for group in _of_type(translated, "AWS::Logs::LogGroup").values()
        if isinstance(group["Properties"].get("LogGroupName"), dict)
    }
    assert groups == {f"/aws/lambda/${{{name}}}": {"Ref": "LogRetentionDays"} for name in functions}


def test_the_webhook_functions_may_be_invoked_only_by_their_api_routes_and_the_replay(translated):
    permissions = _of_type(translated, "AWS::Lambda::Permission")
    assert {permission["Properties"]["Principal"] for permission in permissions.values()} == {
        "apigateway.amazonaws.com",
        "events.amazonaws.com",
    }
    for permission in permissions.values():
        props = permission["Properties"]
        if props["Principal"] == "apigateway.amazonaws.com":
            assert "${__ApiId__}" in json.dumps(props["SourceArn"])  # this API only
    invokers = [
        name
        for name in _of_type(translated, "AWS::IAM::Role")
        if "lambda:InvokeFunction" in json.dumps(translated[name]["Properties"].get("Policies", []))
    ]
    schedules = {
        "EntitlementDeadlinesFunctionEveryMinuteRole": "EntitlementDeadlinesFunction",
        "LicenceSyncRunFunctionDuePortalsRole": "LicenceSyncRunFunction",
    }
    assert sorted(invokers) == [*sorted(schedules), "ReplayFunctionRole"]
    # Each EventBridge Scheduler role may invoke its own job's function alone.
    for role, function in schedules.items():
        invoked = [
            json.dumps(statement["Resource"])
            for policy in translated[role]["Properties"]["Policies"]
            for statement in policy["PolicyDocument"]["Statement"]
        ]
        assert invoked and all(function in resource for resource in invoked), invoked


def test_the_read_routes_are_get_only_and_signed_with_aws_iam(translated):
    [api] = _of_type(translated, "AWS::ApiGatewayV2::Api").values()
    paths = api["Properties"]["Body"]["paths"]
    for path, function in READ_ROUTES.items():
        assert list(paths[path]) == ["get"], path
        operation = paths[path]["get"]
        assert operation["security"] == [{"AWS_IAM": []}], path
        assert f"${{{function}Aliaslive}}" in operation["x-amazon-apigateway-integration"]["uri"]["Fn::Sub"]
    for path in ROUTES:  # while the webhook routes stay open to their senders
        assert paths[path]["post"].get("security") in (None, [{"NONE": []}], [])
    schemes = api["Properties"]["Body"]["components"]["securitySchemes"]
    assert schemes["AWS_IAM"]["x-amazon-apigateway-authtype"] == "awsSigv4"


def test_the_reads_may_only_query_the_view_its_open_invoices_and_the_account_index_and_get_an_installation(translated):
    assert _grants(translated, "AccountsApiFunction") == {
        (
            "dynamodb:Query",
            json.dumps(
                [
                    {"Fn::GetAtt": ["AccountsTable", "Arn"]},
                    {"Fn::Sub": "${AccountsTable.Arn}/index/open-invoices"},
                    {"Fn::Sub": "${NotificationsTable.Arn}/index/by-account"},
                ]
            ),
        ),
        (
            "dynamodb:GetItem",
            json.dumps([{"Fn::GetAtt": ["InstallationsTable", "Arn"]}, {"Fn::GetAtt": ["EntitlementsTable", "Arn"]}]),
        ),
    }


TOKEN_OPENERS = {"LicenceSyncRunFunction", "PortalSyncFunction"}
DECIDES = {
    ("dynamodb:GetItem", json.dumps({"Fn::GetAtt": ["InstallationsTable", "Arn"]})),
    ("dynamodb:GetItem", json.dumps({"Fn::GetAtt": ["EntitlementsTable", "Arn"]})),
    ("dynamodb:UpdateItem", json.dumps({"Fn::GetAtt": ["EntitlementsTable", "Arn"]})),
    (
        "dynamodb:Query",
        json.dumps([{"Fn::GetAtt": ["AccountsTable", "Arn"]}, {"Fn::Sub": "${AccountsTable.Arn}/index/open-invoices"}]),
    ),
}


def _all_grants(translated: dict) -> dict[str, set[tuple[str, str]]]:
    return {
        name: _grants(translated, name, *([STREAM_READER] if name in STREAM_READERS else []))
        for name in _of_type(translated, "AWS::Lambda::Function")
    }


def test_only_the_licence_syncs_may_open_the_kept_tokens_and_each_job_may_do_its_job_alone(translated):
    key = TOKEN_STORE_KEY
    tokens_table = json.dumps({"Fn::GetAtt": ["PortalTokensTable", "Arn"]})
    grants = _all_grants(translated)
    assert {name for name, granted in grants.items() if ("kms:Decrypt", key) in granted} == TOKEN_OPENERS
    assert {name for name, granted in grants.items() if ("dynamodb:GetItem", tokens_table) in granted} == TOKEN_OPENERS
    opens_tokens = {
        ("dynamodb:GetItem", INSTALLATIONS),
        ("dynamodb:UpdateItem", INSTALLATIONS),
        ("dynamodb:GetItem", tokens_table),
        ("dynamodb:UpdateItem", tokens_table),
        ("kms:Decrypt", key),
        ("kms:Encrypt", key),
        _reads_secret("Bitrix24AppCredentials"),
        ("dynamodb:UpdateItem", json.dumps({"Fn::GetAtt": ["RestBucketsTable", "Arn"]})),  # a place in the bucket
    }
    assert grants["PortalSyncFunction"] == opens_tokens
    assert grants["LicenceSyncRunFunction"] == opens_tokens | {
        ("dynamodb:Query", json.dumps({"Fn::Sub": "${InstallationsTable.Arn}/index/licence-sync"}))
    }
    assert grants["EntitlementDeadlinesFunction"] == DECIDES | {
        ("dynamodb:Query", json.dumps({"Fn::Sub": "${EntitlementsTable.Arn}/index/changes-due"}))
    }
    failures = ("sqs:SendMessage", json.dumps({"Fn::GetAtt": ["EntitlementStreamFailures", "Arn"]}))
    assert grants["InstallationChangesFunction"] == DECIDES | {failures}
    assert grants["EntitlementEventsFunction"] == {
        ("events:PutEvents", json.dumps({"Fn::GetAtt": ["BillingEventsBus", "Arn"]})),
        failures,
    }
    assert grants["AccountRebuildFunction"] == {
        ("dynamodb:Scan", TABLE),
        ("dynamodb:UpdateItem", json.dumps({"Fn::GetAtt": ["AccountsTable", "Arn"]})),
    }
    assert grants["QuarantineRequeueFunction"] == {
        ("dynamodb:Scan", json.dumps({"Fn::GetAtt": ["QuarantineTable", "Arn"]})),
        ("dynamodb:DeleteItem", json.dumps({"Fn::GetAtt": ["QuarantineTable", "Arn"]})),
        ("dynamodb:UpdateItem", json.dumps({"Fn::GetAtt": ["QuarantineTable", "Arn"]})),
        ("sqs:SendMessage", json.dumps({"Fn::GetAtt": ["RescueQueue", "Arn"]})),
    }
    schedules = _of_type(translated, "AWS::Scheduler::Schedule")
    assert schedules["LicenceSyncRunFunctionDuePortals"]["Properties"]["ScheduleExpression"] == {
        "Ref": "LicenceSyncRate"
    }
    assert schedules["EntitlementDeadlinesFunctionEveryMinute"]["Properties"]["ScheduleExpression"] == "rate(1 minute)"
    for name, schedule in schedules.items():
        function = name.removesuffix("DuePortals").removesuffix("EveryMinute")
        assert schedule["Properties"]["Target"]["Arn"] == {"Ref": f"{function}Aliaslive"}  # through its alias
    index = {
        index["IndexName"]: index for index in translated["InstallationsTable"]["Properties"]["GlobalSecondaryIndexes"]
    }
    assert [key["AttributeName"] for key in index["licence-sync"]["KeySchema"]] == ["sync_shard", "next_check_at"]
    assert translated["PortalUnreachableAlarm"]["Properties"]["MetricName"] == "PortalUnreachable"


def _mapping(translated: dict, function: str) -> dict:
    [mapping] = [
        mapping["Properties"]
        for mapping in _of_type(translated, "AWS::Lambda::EventSourceMapping").values()
        if mapping["Properties"]["FunctionName"] == {"Ref": f"{function}Aliaslive"}  # through its alias
    ]
    return mapping


def test_the_entitlement_jobs_read_their_tables_streams_with_both_images_and_a_failure_queue(translated):
    for function, table in (
        ("InstallationChangesFunction", "InstallationsTable"),
        ("EntitlementEventsFunction", "EntitlementsTable"),
    ):
        assert translated[table]["Properties"]["StreamSpecification"] == {"StreamViewType": "NEW_AND_OLD_IMAGES"}
        mapping = _mapping(translated, function)
        assert mapping["EventSourceArn"] == {"Fn::GetAtt": [table, "StreamArn"]}
        assert mapping["FunctionResponseTypes"] == ["ReportBatchItemFailures"]
        assert mapping["DestinationConfig"]["OnFailure"]["Destination"] == {
            "Fn::GetAtt": ["EntitlementStreamFailures", "Arn"]
        }
    # Events keep their order: no bisecting, which would publish a later change before an earlier one.
    assert _mapping(translated, "EntitlementEventsFunction")["BisectBatchOnFunctionError"] is False
    assert translated["EntitlementStreamFailuresAlarm"]["Properties"]["Dimensions"][0]["Value"] == {
        "Fn::GetAtt": ["EntitlementStreamFailures", "QueueName"]
    }


def test_the_billing_events_bus_is_archived_and_only_the_events_job_publishes_to_it(translated):
    bus = json.dumps({"Fn::GetAtt": ["BillingEventsBus", "Arn"]})
    publishers = {name for name, granted in _all_grants(translated).items() if ("events:PutEvents", bus) in granted}
    assert publishers == {"EntitlementEventsFunction"}
    [archive] = _of_type(translated, "AWS::Events::Archive").values()
    assert archive["Properties"]["SourceArn"] == {"Fn::GetAtt": ["BillingEventsBus", "Arn"]}
    rule = translated["EntitlementChangedRule"]["Properties"]
    assert rule["EventPattern"] == {"source": ["billing-webhooks"], "detail-type": ["EntitlementChanged"]}
    assert rule["Targets"][0]["Arn"] == {"Fn::GetAtt": ["EntitlementChangedQueue", "Arn"]}


def test_the_projector_reads_new_billing_records_from_the_stream_with_bounded_retries_and_a_failure_queue(translated):
    assert translated["NotificationsTable"]["Properties"]["StreamSpecification"] == {"StreamViewType": "NEW_IMAGE"}
    [mapping] = [
        mapping
        for mapping in _of_type(translated, "AWS::Lambda::EventSourceMapping").values()
        if mapping["Properties"]["FunctionName"] == {"Ref": "AccountProjectorFunctionAliaslive"}
    ]
    props = mapping["Properties"]
    assert props["FunctionName"] == {"Ref": "AccountProjectorFunctionAliaslive"}
    assert props["EventSourceArn"] == {"Fn::GetAtt": ["NotificationsTable", "StreamArn"]}
    assert props["FunctionResponseTypes"] == ["ReportBatchItemFailures"] and props["BisectBatchOnFunctionError"] is True
    assert 0 < props["MaximumRetryAttempts"] <= 10
    assert props["DestinationConfig"]["OnFailure"]["Destination"] == {"Fn::GetAtt": ["AccountProjectorFailures", "Arn"]}
    [pattern] = [json.loads(item["Pattern"]) for item in props["FilterCriteria"]["Filters"]]
    assert pattern == {"eventName": ["INSERT"], "dynamodb": {"NewImage": {"source": {"S": ["billing"]}}}}
    alarm = translated["AccountProjectorFailuresAlarm"]["Properties"]
    assert alarm["Dimensions"] == [
        {"Name": "QueueName", "Value": {"Fn::GetAtt": ["AccountProjectorFailures", "QueueName"]}}
    ]
    assert alarm["AlarmActions"] == [{"Ref": "OpsTopic"}]
    # SAM's own policy for a stream source: read the stream's records.
    grants = _grants(
        translated, "AccountProjectorFunction", "arn:aws:iam::aws:policy/service-role/AWSLambdaDynamoDBExecutionRole"
    )
    assert ("dynamodb:UpdateItem", json.dumps({"Fn::GetAtt": ["AccountsTable", "Arn"]})) in grants
    assert not [grant for grant in grants if grant[0] in ("dynamodb:PutItem", "dynamodb:DeleteItem")]


def test_the_accounts_table_is_one_item_per_part_of_an_account(translated):
    table = translated["AccountsTable"]["Properties"]
    assert table["KeySchema"] == [
        {"AttributeName": "account_key", "KeyType": "HASH"},
        {"AttributeName": "part", "KeyType": "RANGE"},
    ]
    assert table["PointInTimeRecoverySpecification"] == {"PointInTimeRecoveryEnabled": True}


def test_every_function_deploys_through_its_alias_gradually_rolling_back_on_the_stacks_error_alarms(translated):
    functions = _of_type(translated, "AWS::Lambda::Function")
    aliases = {
        alias["Properties"]["FunctionName"]["Ref"] for alias in _of_type(translated, "AWS::Lambda::Alias").values()
    }
    assert aliases == set(functions)
    groups = _of_type(translated, "AWS::CodeDeploy::DeploymentGroup")
    assert len(groups) == len(functions)
    for group in groups.values():
        props = group["Properties"]
        assert props["AutoRollbackConfiguration"]["Enabled"] is True
        assert {alarm["Name"]["Ref"] for alarm in props["AlarmConfiguration"]["Alarms"]} == {
            "ApiServerErrorsAlarm",
            "BillingFunctionErrorsAlarm",
            "OtherFunctionErrorsAlarm",
            "JobFunctionErrorsAlarm",
        }


def test_the_operations_dashboard_shows_every_figure_an_operator_watches(translated):
    body = translated["OperationsDashboard"]["Properties"]["DashboardBody"]["Fn::Sub"]
    widgets = json.loads(body)["widgets"]
    shown = json.dumps(widgets)
    for figure in (
        "Invocations",  # deliveries by route
        "Stored",
        "Duplicate",
        "Rejected",  # refusals by reason
        "Quarantined",
        "Parked",
        "ApproximateNumberOfMessagesVisible",  # parked now
        "LicenceSyncOk",
        "PortalTokensRefreshed",
        "PortalUnreachable",
        "PortalTokensInDoubt",
        "EntitlementsChanged",
        "EventsPublished",
        "LinkConflicts",
    ):
        assert figure in shown, figure
    alarms = {name for name, resource in _of_type(translated, "AWS::CloudWatch::Alarm").items()}
    [panel] = [widget for widget in widgets if widget["type"] == "alarm"]
    named = {alarm.rpartition(":alarm:${")[2].removesuffix("}") for alarm in panel["properties"]["alarms"]}
    assert named <= alarms and len(named) == 7
    from local import template

    assert "${AWS::StackName}-operations" in template.load()["Outputs"]["OperationsDashboardUrl"]["Value"]["Fn::Sub"]


def _as_deployed(value: Any, conditions: dict[str, bool]) -> Any:
    """`value` with every Fn::If decided by `conditions` (as CloudFormation decides them)."""
    if isinstance(value, dict):
        if set(value) == {"Fn::If"}:
            condition, when_true, when_false = value["Fn::If"]
            return _as_deployed(when_true if conditions[condition] else when_false, conditions)
        return {key: _as_deployed(item, conditions) for key, item in value.items()}
    if isinstance(value, list):
        return [_as_deployed(item, conditions) for item in value]
    return value


def test_a_stack_reattached_to_a_kept_token_key_makes_none_and_seals_and_opens_only_under_the_kept_one(translated):
    reattached = {"ReattachesTokenStoreKey": True, "MakesTokenStoreKey": False}
    assert translated["TokenStoreKey"]["Condition"] == "MakesTokenStoreKey"  # not made
    others = {name: resource for name, resource in translated.items() if name != "TokenStoreKey"}
    deployed = json.dumps(_as_deployed(others, reattached))
    assert '"TokenStoreKey"' not in deployed  # nothing names the key the stack did not make
    alias = _as_deployed(translated["TokenStoreKeyAlias"], reattached)
    assert alias["Properties"]["TargetKeyId"] == {"Ref": "KeptTokenStoreKeyArn"}
    kept = json.dumps({"Ref": "KeptTokenStoreKeyArn"})
    roles = _as_deployed(_of_type(translated, "AWS::IAM::Role"), reattached)
    granted = {
        name
        for name, role in roles.items()
        for policy in role["Properties"].get("Policies", [])
        for statement in policy["PolicyDocument"]["Statement"]
        if json.dumps(statement["Resource"]) == kept and "kms:Encrypt" in json.dumps(statement["Action"])
    }
    assert {name.removesuffix("Role") for name in granted} == TOKEN_OPENERS | {
        "AppInstallFunction",
        "AppUpdateFunction",
    }
