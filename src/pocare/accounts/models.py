"""People, their roles at sites, and machine tokens. Nobody is ever deleted: people are
deactivated, roles revoked, tokens revoked, each with a ledger event."""

from __future__ import annotations

from typing import Any

from django.contrib.auth.models import AbstractUser
from django.db import models
from django.utils import timezone

from pocare.accounts.roles import Role


class User(AbstractUser):
    """A person who uses POCare (no shared accounts, A11-IAM).

    ``printed_name`` is the name shown with every signature (P11-50) and copied into every
    ledger event, so renaming a person never changes what they signed.
    """

    printed_name = models.CharField(max_length=200, help_text="Full name as printed with signatures.")
    failed_attempts = models.PositiveIntegerField(default=0)
    locked_at = models.DateTimeField(null=True, blank=True)
    password_changed_at = models.DateTimeField(null=True, blank=True)
    must_change_password = models.BooleanField(default=False)
    deactivated_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        db_table = "accounts_user"
        ordering = ["username"]

    def __str__(self) -> str:
        return self.printed_name or self.username

    def delete(self, *args: Any, **kwargs: Any) -> tuple[int, dict[str, int]]:
        raise PermissionError("People are deactivated, never deleted (30-year record retention).")

    @property
    def is_locked(self) -> bool:
        return self.locked_at is not None


class Membership(models.Model):
    """A person's role at a site, from when and (for inspectors) until when.

    Revocation records who and when; the row stays, so who could do what on any past day can
    always be answered.
    """

    user = models.ForeignKey(User, on_delete=models.PROTECT, related_name="memberships")
    role = models.CharField(max_length=20, choices=Role.choices)
    site = models.ForeignKey("network.Site", on_delete=models.PROTECT, related_name="memberships")
    granted_at = models.DateTimeField(default=timezone.now)
    granted_by = models.ForeignKey(User, null=True, blank=True, on_delete=models.PROTECT, related_name="+")
    valid_until = models.DateTimeField(null=True, blank=True, help_text="Required for inspectors.")
    revoked_at = models.DateTimeField(null=True, blank=True)
    revoked_by = models.ForeignKey(User, null=True, blank=True, on_delete=models.PROTECT, related_name="+")

    class Meta:
        db_table = "accounts_membership"
        ordering = ["site__code", "role"]

    def __str__(self) -> str:
        return f"{self.user} — {self.get_role_display()} at {self.site}"

    def is_active_at(self, when: Any) -> bool:
        return (
            self.revoked_at is None
            and self.granted_at <= when
            and (self.valid_until is None or when < self.valid_until)
        )


class PasswordHistory(models.Model):
    """A password hash its owner used before, so the last ones are not chosen again (P11-300).

    Only the hash is kept (as Django stores passwords); rows are never edited or deleted.
    """

    user = models.ForeignKey(User, on_delete=models.PROTECT, related_name="password_history")
    password = models.CharField(max_length=128)
    set_at = models.DateTimeField(null=True, blank=True, help_text="When this password was set.")
    replaced_at = models.DateTimeField(default=timezone.now)

    class Meta:
        db_table = "accounts_passwordhistory"
        ordering = ["-replaced_at", "-pk"]

    def __str__(self) -> str:
        return f"{self.user} password replaced {self.replaced_at:%Y-%m-%d}"


class TokenScope(models.TextChoices):
    READ = "read", "Read only"
    WRITE = "write", "Read and write"


class ApiToken(models.Model):
    """A bearer token for a machine client (device, hospital system) acting as one user.

    Only the SHA-256 of the token is stored; the token itself is shown once, when issued.
    A token ends at ``expires_at``; a ``read`` token never changes anything. ``last_used_*``
    tell its owner and QA whether, when and from where it is still used.
    """

    user = models.ForeignKey(User, on_delete=models.PROTECT, related_name="api_tokens")
    name = models.CharField(max_length=100)
    prefix = models.CharField(max_length=12, help_text="First characters, to recognise a token.")
    key_hash = models.CharField(max_length=64, unique=True)
    scope = models.CharField(max_length=5, choices=TokenScope.choices, default=TokenScope.WRITE)
    created_at = models.DateTimeField(default=timezone.now)
    expires_at = models.DateTimeField(null=True, blank=True, help_text="The token stops working at this time.")
    revoked_at = models.DateTimeField(null=True, blank=True)
    last_used_at = models.DateTimeField(null=True, blank=True)
    last_used_ip = models.GenericIPAddressField(null=True, blank=True)

    class Meta:
        db_table = "accounts_apitoken"
        ordering = ["-created_at"]

    def __str__(self) -> str:
        return f"{self.name} ({self.prefix}…)"


class ExternalIdentity(models.Model):
    """A person's account at a hospital's identity provider: the (issuer, subject) pair its ID
    tokens carry, linked to one POCare person (docs/access.md "Hospital sign-on").

    The provider proves who signs in; POCare decides what they may do (roles are :class:`Membership`,
    never claims). A link is made by Control Site QA, or on a first sign-in by a verified e-mail
    that matches exactly one person where the provider allows it; it is revoked, never deleted.
    """

    class Via(models.TextChoices):
        ADMIN = "admin", "Linked by Control Site QA"
        EMAIL = "email", "Linked at first sign-in by a verified e-mail"

    user = models.ForeignKey(User, on_delete=models.PROTECT, related_name="external_identities")
    provider = models.CharField(max_length=50, help_text="The provider's key in POCARE_OIDC_PROVIDERS.")
    issuer = models.CharField(max_length=500)
    subject = models.CharField(max_length=255)
    via = models.CharField(max_length=5, choices=Via.choices)
    linked_at = models.DateTimeField(default=timezone.now)
    linked_by = models.ForeignKey(User, null=True, blank=True, on_delete=models.PROTECT, related_name="+")
    revoked_at = models.DateTimeField(null=True, blank=True)
    revoked_by = models.ForeignKey(User, null=True, blank=True, on_delete=models.PROTECT, related_name="+")

    class Meta:
        db_table = "accounts_externalidentity"
        ordering = ["provider", "subject"]
        constraints = [
            # One live link per identity at a provider: an (issuer, subject) pair is one person.
            models.UniqueConstraint(fields=["issuer", "subject"], condition=models.Q(revoked_at=None),
                                    name="accounts_extid_one_live_link"),
        ]

    def __str__(self) -> str:
        return f"{self.subject} at {self.provider} → {self.user}"
