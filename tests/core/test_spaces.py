"""core.spaces: who sees which space, and what a role there allows."""

from __future__ import annotations

import pytest
from pydantic import SecretStr

from llmdocs.core.auth import Principal
from llmdocs.core.config import Settings
from llmdocs.core.spaces import SpaceView, valid_space


def settings(default_role: str = "editor") -> Settings:
    return Settings(jwt_secret=SecretStr("k" * 40), spaces_default_role=default_role)


def test_a_member_sees_their_spaces_and_default_with_roles_capping_writes() -> None:
    alice = Principal("user:alice", frozenset({"docs:read", "docs:write"}))
    view = SpaceView.of(alice, {"team-a": "viewer", "team-b": "admin"}, settings())
    assert view.visible() == frozenset({"default", "team-a", "team-b"})
    assert view.may_read("team-a") and not view.may_write("team-a")
    assert view.may_write("team-b") and view.may_admin("team-b")
    assert view.may_write("default") and not view.may_admin("default")
    assert not view.may_read("team-c") and view.role("team-c") is None


def test_default_can_be_read_only_or_closed() -> None:
    bob = Principal("user:bob", frozenset({"docs:read"}))
    viewer = SpaceView.of(bob, {}, settings("viewer"))
    assert viewer.may_read("default") and not viewer.may_write("default")
    closed = SpaceView.of(bob, {}, settings("none"))
    assert closed.visible() == frozenset() and not closed.may_read("default")
    assert SpaceView.of(bob, {"default": "admin"}, settings("viewer")).may_admin("default")


def test_services_and_space_admins_see_everything_but_delegated_calls_do_not() -> None:
    service = Principal("service:orchestrator", frozenset({"*:read", "*:write"}))
    root = Principal("user:root", frozenset({"spaces:admin"}))
    acting = Principal("user:carol", frozenset({"docs:read"}),
                       {"act": {"sub": "service:orchestrator"}})
    for who in (service, root):
        view = SpaceView.of(who, {}, settings("none"))
        assert view.visible() is None and view.may_admin("anything")
    assert SpaceView.of(acting, {}, settings()).visible() == frozenset({"default"})


@pytest.mark.parametrize("name", ["default", "team-a", "a", "x" * 63, "a1-b2"])
def test_space_names(name: str) -> None:
    assert valid_space(name) == name


@pytest.mark.parametrize("name", ["", "Team", "-a", "a-", "a_b", "a b", "x" * 64, "ü"])
def test_bad_space_names(name: str) -> None:
    with pytest.raises(ValueError, match="lower-case letters"):
        valid_space(name)
