"""Who each test persona is: the roles they hold and where, and what that lets them do at a site.

The demo's people hold one role each (``operator.mad`` is an operator at Madrid). People also hold
roles at two sites — an operator at Lisbon who is patient navigator at Madrid — and must then see
at each site what the role held *there* allows, nothing more (issue 13). Those multi-role personas
are named after their roles, joined by ``+``; they are made on first use through the same services
as the demo's people (``user_create``, ``membership_grant`` with ``actor=None``), so a test that
does not ask for them does not see them (an extra operator at Lisbon changes Lisbon's training
state, which other tests rely on).
"""

from __future__ import annotations

from typing import Any

from pocare.accounts.roles import NETWORK_ROLES, ROLE_PERMS, Perm, Role
from pocare.demo.people import CONTROL, SITES, demo_username

#: Multi-role personas: username → (role, site code) of each role they hold.
MULTI_ROLE: dict[str, tuple[tuple[Role, str], ...]] = {
    "operator.lis+navigator.mad": ((Role.OPERATOR, "LIS"), (Role.NAVIGATOR, "MAD")),
    "manager.mad+physician.lis": ((Role.SITE_MANAGER, "MAD"), (Role.PHYSICIAN, "LIS")),
    # Control Site roles are held at the Control Site only; a planner may also work at a site.
    "planner+operator.mad": ((Role.PLANNER, CONTROL.code), (Role.OPERATOR, "MAD")),
}

_PRINTED = {
    "operator.lis+navigator.mad": "Rita Moreira",
    "manager.mad+physician.lis": "Dr. Teresa Lopes",
    "planner+operator.mad": "Oriol Casals",
}


def roles_of(username: str) -> tuple[tuple[Role, str], ...]:
    """The (role, site code) pairs a persona holds: a multi-role persona's, or a demo person's one role."""
    if username in MULTI_ROLE:
        return MULTI_ROLE[username]
    for spec in [CONTROL, *SITES]:
        for role in spec.people:
            if demo_username(role, spec.code) == username:
                return ((role, spec.code),)
    raise KeyError(f"{username} is not a test persona")


def perms_at(username: str, site_code: str) -> frozenset[Perm]:
    """What the persona may do at ``site_code``: the roles held there, and Control Site roles
    everywhere. Written from the policy (``ROLE_PERMS``), independently of the selectors under test."""
    perms: set[Perm] = set()
    for role, where in roles_of(username):
        if role in NETWORK_ROLES or where == site_code:
            perms |= ROLE_PERMS[role]
    return frozenset(perms)


def perms_anywhere(username: str) -> frozenset[Perm]:
    perms: set[Perm] = set()
    for role, _ in roles_of(username):
        perms |= ROLE_PERMS[role]
    return frozenset(perms)


def holds_network_role(username: str) -> bool:
    return any(role in NETWORK_ROLES for role, _ in roles_of(username))


def ensure_multi_role(username: str, *, password: str) -> Any:
    """The multi-role persona ``username``, created through the services if it does not exist yet."""
    from pocare.accounts.models import User
    from pocare.accounts.services import membership_grant, user_create
    from pocare.network.models import Site

    user = User.objects.filter(username=username).first()
    if user is not None:
        return user
    user = user_create(actor=None, username=username, printed_name=_PRINTED[username],
                       email=f"{username}@demo.pocare.invalid", reason="Test persona with roles at two sites",
                       initial_password=password)
    for role, code in MULTI_ROLE[username]:
        membership_grant(actor=None, user=user, role=role, site=Site.objects.get(code=code),
                         reason="Test persona with roles at two sites")
    return user
