"""Who decides a portal's entitlement, as a property (docs/security.md, "Who can do what"):
Hypothesis plays any sequence of installs, updates, payments and uninstalls from the owner
(Bitrix24, through the portal's administrator), a stranger with a portal of their own, and an
ordinary user of the owner's portal, with and without refresh tokens, and billing accounts that
name the portal, in any order. After every step:

- once the owner is bound (an install or update of theirs vouched for), their events are never refused;
- nobody else's payment, uninstall or install changes the owner's bound installation;
- a vouched record is the owner's: on the owner's domain, with the owner's application token;
- the portal's link never moves from one account to another by itself, and never to a stranger's.
"""

import secrets
from dataclasses import dataclass

import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from billing_webhooks.wire.credentials import token_sha256
from local import samples
from local.fake_bitrix24 import Portal
from tests.conftest import Table
from tests.integration.test_identity import EVIL, EVIL_ACCESS
from tests.integration.test_installations import ACCESS, DOMAIN, MEMBER, PORTALS, deliver, lifecycle, payment

OWNER_ACCOUNT, RIVAL_ACCOUNT, STRANGER_ACCOUNT = 990001, 990002, 990003
CODES = {
    OWNER_ACCOUNT: [MEMBER, DOMAIN, DOMAIN.upper()],
    RIVAL_ACCOUNT: [MEMBER.upper(), DOMAIN],  # a second account naming the owner's portal
    STRANGER_ACCOUNT: [EVIL, "evil-member", DOMAIN + ".evil"],
}
BOUND_FIELDS = ("status", "domain", "application_token_sha256", "licence_status", "paid_until", "vouched")

# (kind, an option, a value): with a refresh token or not; which member_id a stranger claims (the
# owner's, or the owner's domain as one); which account, with which code.
steps = st.one_of(
    st.tuples(st.sampled_from(["owner_install", "owner_update"]), st.booleans(), st.none()),
    st.tuples(st.sampled_from(["owner_payment", "owner_uninstall"]), st.just(False), st.none()),
    st.tuples(
        st.sampled_from(["stranger_install", "stranger_update", "stranger_payment", "stranger_uninstall"]),
        st.booleans(),
        st.sampled_from([MEMBER, DOMAIN]),
    ),
    st.tuples(st.sampled_from(["insider_install", "insider_update", "insider_payment"]), st.booleans(), st.none()),
    *[st.tuples(st.just("account"), st.just(account), st.sampled_from(codes)) for account, codes in CODES.items()],
)


@dataclass
class World:
    """What the test knows: the owner's current application token, whether the owner is installed
    and bound, and which account the portal was first linked to."""

    owner: Portal
    stranger: Portal
    owner_token: str = ""
    owner_installed: bool = False
    owner_bound: bool = False
    ts: int = 1466440000
    linked_to: int | None = None

    def tick(self) -> int:
        self.ts += 10
        return self.ts


def _fresh_world(stack, dynamodb) -> World:
    keys = {"NotificationsTable": ("notification_id", "notification_type"), "RestBucketsTable": ("portal",)}
    for name in (
        "InstallationsTable",
        "NotificationsTable",
        "EntitlementsTable",
        "PortalTokensTable",
        "RestBucketsTable",
    ):
        Table(dynamodb, name, keys.get(name, ("member_id",))).clear()
    owner = Portal(ACCESS, samples.APP_CODE, status="P", days=30, member_id=MEMBER, refresh_token="owner-refresh")
    stranger = Portal(EVIL_ACCESS, samples.APP_CODE, member_id="evil-member", refresh_token="evil-refresh")
    stack.bitrix24.portals.clear()
    stack.bitrix24.portals.update({DOMAIN: owner, EVIL: stranger})
    PORTALS[DOMAIN] = owner
    return World(owner, stranger)


def _owner(world: World, kind: str, with_refresh: bool, now: float, api) -> int:
    """The owner's event, as Bitrix24 sends it: installs and updates carry the administrator's pair
    (a reinstall of a bound portal always with its refresh token, as Bitrix24 sends one)."""
    event = {"owner_install": "app_install", "owner_update": "app_update"}.get(kind)
    if event:
        if event == "app_install":
            world.owner_token = f"owner-token-{secrets.token_hex(4)}"  # Bitrix24 issues one per install
            with_refresh = with_refresh or world.owner_bound
        pair = world.owner.user_pair(True, now)
        auth = {"access_token": pair["AUTH_ID"], "refresh_token": pair["REFRESH_ID"] if with_refresh else None}
        status, _ = deliver(api, event, lifecycle(event, ts=world.tick(), token=world.owner_token, **auth))
        if status == 200:
            world.owner_installed = True
            world.owner_bound = world.owner_bound or with_refresh
        return status
    if kind == "owner_payment":
        return deliver(api, "app_payment", payment(ts=world.tick(), token=world.owner_token, STATUS="P", DAYS="30"))[0]
    status, _ = deliver(api, "app_uninstall", lifecycle("app_uninstall", ts=world.tick(), token=world.owner_token))
    world.owner_installed = world.owner_installed and status != 200
    return status


def _other(world: World, kind: str, with_refresh: bool, claimed: str | None, now: float, api) -> int:
    actor, _, action = kind.partition("_")
    if actor == "stranger":  # from their own portal, naming the owner's member_id (or its domain as one)
        pair = world.stranger.user_pair(True, now)
        where = {"domain": EVIL, "client_endpoint": f"https://{EVIL}/rest/", "member_id": claimed or MEMBER}
    else:  # an ordinary user of the owner's portal, with the pair the app's page gave them
        pair = world.owner.user_pair(False, now)
        where = {}
    auth = {"access_token": pair["AUTH_ID"], "refresh_token": pair["REFRESH_ID"] if with_refresh else None}
    token = f"{actor}-token-{secrets.token_hex(4)}"
    if action in ("install", "update"):
        event = f"app_{action}"
        return deliver(api, event, lifecycle(event, ts=world.tick(), token=token, **auth, **where))[0]
    body = (
        payment(ts=world.tick(), token=token, STATUS="P", DAYS="3650")
        if action == "payment"
        else lifecycle("app_uninstall", ts=world.tick(), token=token)
    )
    body["auth"].update(where)
    return deliver(api, f"app_{action}", body)[0]


def _the_owner_installs(refresh: bool) -> tuple:
    return ("owner_install", refresh, None)


@pytest.mark.filterwarnings("ignore::UserWarning")
@settings(
    max_examples=200,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
    derandomize=True,
)
@given(plays=st.lists(steps, max_size=7))
# The attacks of docs/security.md's table, always played beside what Hypothesis draws:
@example(plays=[_the_owner_installs(True), ("insider_update", True, None), ("owner_payment", False, None)])
@example(plays=[_the_owner_installs(False), ("stranger_install", False, MEMBER), ("owner_update", True, None)])
@example(plays=[_the_owner_installs(True), ("account", OWNER_ACCOUNT, MEMBER), ("account", RIVAL_ACCOUNT, DOMAIN)])
@example(plays=[_the_owner_installs(True), ("stranger_install", False, DOMAIN), ("account", STRANGER_ACCOUNT, EVIL)])
def test_no_stranger_insider_or_second_account_decides_the_owners_portal(api, stack, dynamodb, plays):
    from billing_webhooks.data import entitlements
    from billing_webhooks.domain import links

    installations = Table(dynamodb, "InstallationsTable", ("member_id",))
    world = _fresh_world(stack, dynamodb)
    for kind, option, value in plays:
        now = stack.clock.time()
        before = installations.get(member_id=MEMBER) or {}
        if kind == "account":
            links.account_moved(option, value)
            linked = (entitlements.get(MEMBER) or {}).get("account_id")
            assert linked != STRANGER_ACCOUNT, ("a stranger's account decides the owner's portal", plays)
            assert world.linked_to is None or linked == world.linked_to, ("the link moved by itself", plays)
            world.linked_to = world.linked_to or linked
            continue
        if kind.startswith("owner"):
            if kind != "owner_install" and not world.owner_installed:
                continue  # Bitrix24 sends nothing else for a portal without the app
            bound = world.owner_bound
            status = _owner(world, kind, option, now, api)
            vouching = kind in ("owner_install", "owner_update") and option
            assert status < 300 or not (bound or vouching), ("the owner refused", kind, status, plays)
        else:
            _other(world, kind, option, value, now, api)
            if world.owner_bound:
                after = installations.get(member_id=MEMBER) or {}
                assert {name: after.get(name) for name in BOUND_FIELDS} == {
                    name: before.get(name) for name in BOUND_FIELDS
                }, ("someone else changed the owner's installation", kind, plays)
        record = installations.get(member_id=MEMBER) or {}
        if record.get("vouched") is True:
            assert record["domain"] == DOMAIN, ("the owner's domain replaced", plays)
            assert record["application_token_sha256"] == token_sha256(world.owner_token), ("not the owner's", plays)
