"""PortalTokensTable: each portal's OAuth tokens, sealed (data/sealing.py), keyed by `member_id`.

Every DynamoDB call on the table, through the toolkit. A refresh is claimed before it is made:
the claim (a lease, toolkit.claim) bumps `version`, conditional on the version the claimer read,
so of any number of callers racing one wins and the others re-read (domain/portal_tokens.py).
The refreshed pair replaces the old one in one conditional write on the claimed version.
"""

from typing import Any

from billing_webhooks.data import toolkit
from billing_webhooks.settings import settings

UNAVAILABLE = "The portal's tokens cannot be reached right now; retry later."
FORMER = ("data_key",)  # the former scheme's data key: gone once a pair is sealed anew


def _table() -> str:
    return settings().portal_tokens_table_name


def _key(member_id: str) -> dict[str, Any]:
    return {"member_id": member_id}


def get(member_id: str) -> dict[str, Any] | None:
    return toolkit.get(_table(), _key(member_id), UNAVAILABLE)


MENDING_FLAGS = ("member_id", "refused", "in_doubt_since", "vouch_pending")  # readable without the pair
# An install's refresh token kept to be vouched for later, and what its claim needs: readable
# without the pair by the functions that vouch on replay (template.yaml: dynamodb:Attributes).
PENDING = (*MENDING_FLAGS, "version", "server_endpoint", "refreshing_until", "pending_sealed")


def flags(member_id: str) -> dict[str, Any] | None:
    """Whether a pair is kept and how it stands, without the sealed pair (the webhook functions'
    roles may read these attributes alone)."""
    return toolkit.get(_table(), _key(member_id), UNAVAILABLE, attributes=MENDING_FLAGS)


def pending(member_id: str) -> dict[str, Any] | None:
    """The kept install's refresh token (sealed) and its claim's fields, without the pair."""
    return toolkit.get(_table(), _key(member_id), UNAVAILABLE, attributes=PENDING)


# A refresh token Bitrix24's OAuth server refused, by its SHA-256 (never the token): an item of
# its own beside the portals' (readable with the flags alone), gone when such a token would have
# expired anyway. The same made-up token is never sent with the vendor's credentials twice.
REFUSED_REFRESH_TOKEN = "refused-refresh-token#"


def refused_before(token_sha256: str) -> bool:
    item = toolkit.get(_table(), _key(REFUSED_REFRESH_TOKEN + token_sha256), UNAVAILABLE, attributes=MENDING_FLAGS)
    return item is not None


def remember_refused(token_sha256: str, error: str, expires_at: int) -> None:
    toolkit.update(
        _table(),
        _key(REFUSED_REFRESH_TOKEN + token_sha256),
        UNAVAILABLE,
        values={"refused": error, "expires_at": expires_at},
    )


def put_issued(member_id: str, sealed: str, access_expires_at: int, server_endpoint: str, issued_at: str) -> None:
    """Tokens Bitrix24 just issued outside a claimed refresh (an install's check of its member_id):
    the newest pair, whatever was kept; a refresh in flight then fails its write and re-reads."""
    toolkit.update(
        _table(),
        _key(member_id),
        UNAVAILABLE,
        expression="SET sealed = :sealed, access_expires_at = :expires, server_endpoint = :server,"
        " issued_at = :issued, version = if_not_exists(version, :zero) + :one"
        " REMOVE refreshing_until, refused, data_key, in_doubt_since, vouch_pending, pending_sealed",
        condition_values={
            ":sealed": sealed,
            ":expires": access_expires_at,
            ":server": server_endpoint,
            ":issued": issued_at,
            ":zero": 0,
            ":one": 1,
        },
    )


def claim_refresh(member_id: str, version: int, now: int, lease_until: int) -> bool:
    """True when this caller may refresh: nobody changed the tokens since it read `version`, and no
    other claim's lease is running. The claim holds `version + 1`."""
    return toolkit.claim(
        _table(),
        _key(member_id),
        UNAVAILABLE,
        lease="refreshing_until",
        now=now,
        until=lease_until,
        when="version = :version",
        also="version = version + :one",
        values={":version": version, ":one": 1},
    )


def put_refreshed(
    member_id: str, claimed: int, sealed: str, access_expires_at: int, issued_at: str, *, vouching: bool = False
) -> bool:
    """The rotated pair in place of the old, if the claim `claimed` still holds (one write).
    `vouching`: the pair the kept install's refresh token brought, which replaces any refused one."""
    vouched = ", refused, vouch_pending, pending_sealed" if vouching else ""
    written, _ = toolkit.update(
        _table(),
        _key(member_id),
        UNAVAILABLE,
        expression="SET sealed = :sealed, access_expires_at = :expires, issued_at = :issued,"
        f" version = version + :one REMOVE refreshing_until, data_key, in_doubt_since{vouched}",
        condition="version = :claimed",
        condition_values={
            ":sealed": sealed,
            ":expires": access_expires_at,
            ":issued": issued_at,
            ":one": 1,
            ":claimed": claimed,
        },
    )
    return written


def put_unvouched(member_id: str, sealed: str, server_endpoint: str, pending_at: str) -> None:
    """An install's refresh token that could not be vouched for yet (the OAuth server or the
    portal did not answer): kept sealed beside the pair, never over it, to vouch for the install
    later (`vouch_pending`); the newest such token wins. The version is left alone: a refresh of
    the pair in flight still writes its rotated pair."""
    toolkit.update(
        _table(),
        _key(member_id),
        UNAVAILABLE,
        expression="SET pending_sealed = :sealed, server_endpoint = if_not_exists(server_endpoint, :server),"
        " vouch_pending = :pending, version = if_not_exists(version, :zero)",
        condition_values={":sealed": sealed, ":server": server_endpoint, ":pending": pending_at, ":zero": 0},
    )


def drop_pending(member_id: str, claimed: int) -> bool:
    """The kept install's refresh token refused by the OAuth server: gone, the pair beside it as it was."""
    written, _ = toolkit.update(
        _table(),
        _key(member_id),
        UNAVAILABLE,
        expression="SET version = version + :one REMOVE pending_sealed, vouch_pending, refreshing_until",
        condition="version = :claimed",
        condition_values={":claimed": claimed, ":one": 1},
    )
    return written


def release(member_id: str, claimed: int, refused: str | None = None, doubt_since: str | None = None) -> bool:
    """The claim given up (the refresh failed); `refused`: Bitrix24 will never take these tokens;
    `doubt_since`: the refresh's answer was lost, so the kept pair may be spent at Bitrix24."""
    if refused:
        expression = "SET refused = :refused, version = version + :one REMOVE refreshing_until"
        values = {":refused": refused, ":one": 1, ":claimed": claimed}
    elif doubt_since:
        expression = "SET in_doubt_since = if_not_exists(in_doubt_since, :doubt) REMOVE refreshing_until"
        values = {":doubt": doubt_since, ":claimed": claimed}
    else:
        expression, values = "REMOVE refreshing_until", {":claimed": claimed}
    written, _ = toolkit.update(
        _table(),
        _key(member_id),
        UNAVAILABLE,
        expression=expression,
        condition="version = :claimed",
        condition_values=values,
    )
    return written


def forget(member_id: str, uninstalled_at: str) -> bool:
    """The portal's kept tokens destroyed (the app uninstalled at `uninstalled_at`), unless a pair
    was issued since (a reinstall that came first): False then."""
    return toolkit.delete(
        _table(),
        _key(member_id),
        UNAVAILABLE,
        condition="attribute_not_exists(#issued_at) OR #issued_at <= :uninstalled",
        condition_values={":uninstalled": uninstalled_at},
    )
