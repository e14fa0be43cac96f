"""Scoped API keys: issue, parse, hash and verify."""

from __future__ import annotations

import hashlib

import pytest

from facekey.errors import InvalidApiKey, SecurityError
from facekey.security.api_keys import (
    IssuedKey,
    Scope,
    hash_secret,
    issue_key,
    parse_token,
    verify_secret,
)


def test_scopes() -> None:
    assert [str(scope) for scope in Scope] == ["admin", "enrol", "terminal", "privacy"]


@pytest.mark.parametrize("scope", list(Scope))
def test_issue_and_parse_round_trip(scope: Scope) -> None:
    issued = issue_key(scope)
    assert issued.scope is scope
    assert len(issued.key_id) == 12
    assert issued.token.startswith(f"fk_{scope}_{issued.key_id}_")
    parsed = parse_token(issued.token)
    assert parsed.key_id == issued.key_id
    assert parsed.scope is scope
    assert issued.token.endswith(parsed.secret)
    assert len(parsed.secret) == 43  # 32 random bytes


def test_keys_are_unique() -> None:
    tokens = {issue_key(Scope.TERMINAL).token for _ in range(200)}
    assert len(tokens) == 200


def test_underscores_in_key_id_and_secret_parse() -> None:
    key_id, secret = "ab_cd-ef_gh_", "_" * 20 + "x-" * 11 + "_"
    parsed = parse_token(f"fk_enrol_{key_id}_{secret}")
    assert (parsed.key_id, parsed.scope, parsed.secret) == (key_id, Scope.ENROL, secret)


def test_verify_secret() -> None:
    issued = issue_key(Scope.ADMIN)
    parsed = parse_token(issued.token)
    stored = issued.secret_hash
    assert stored == hash_secret(parsed.secret)
    assert stored == hashlib.sha256(parsed.secret.encode()).hexdigest()
    assert verify_secret(parsed.secret, stored)
    assert not verify_secret(parse_token(issue_key(Scope.ADMIN).token).secret, stored)
    assert not verify_secret(parsed.secret, "é" + stored[1:])  # non-ASCII stored value


def test_tampered_token_fails_verification() -> None:
    issued = issue_key(Scope.PRIVACY)
    token = issued.token
    last = "A" if token[-1] != "A" else "B"
    tampered = parse_token(token[:-1] + last)
    assert not verify_secret(tampered.secret, issued.secret_hash)


def test_tampered_scope_is_refused_or_changes_scope() -> None:
    issued = issue_key(Scope.TERMINAL)
    with pytest.raises(InvalidApiKey):
        parse_token(issued.token.replace("terminal", "root", 1))
    assert parse_token(issued.token.replace("terminal", "admin", 1)).scope is Scope.ADMIN


@pytest.mark.parametrize(
    "mutate",
    [
        lambda t: "",
        lambda t: t[:-1],
        lambda t: t + "x",
        lambda t: t.replace("fk_", "sk_", 1),
        lambda t: t.replace("_", "-", 1),
        lambda t: t[:-1] + "=",
        lambda t: t[:-1] + "é",
        lambda t: " " + t,
        lambda t: t + "\n",
    ],
)
def test_malformed_tokens_are_refused_without_echoing_the_secret(mutate: object) -> None:
    token = issue_key(Scope.ENROL).token
    secret = parse_token(token).secret
    bad = mutate(token)  # type: ignore[operator]
    with pytest.raises(InvalidApiKey) as info:
        parse_token(bad)
    assert secret[:10] not in str(info.value)
    assert isinstance(info.value, SecurityError)


def test_reprs_hide_the_secret() -> None:
    issued = issue_key(Scope.TERMINAL)
    secret = parse_token(issued.token).secret
    assert secret not in repr(issued)
    assert secret not in repr(parse_token(issued.token))
    assert issued.key_id in repr(issued)


def test_issued_key_is_frozen() -> None:
    issued = issue_key(Scope.ADMIN)
    assert isinstance(issued, IssuedKey)
    with pytest.raises(AttributeError):
        issued.scope = Scope.ENROL  # type: ignore[misc]
