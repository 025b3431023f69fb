"""Ledger event types of the accounts app."""

from django.db import models

from pocare.ledger.events import event_types


@event_types
class AccountEvent(models.TextChoices):
    USER_CREATED = "accounts.user_created", "User created"
    USER_DEACTIVATED = "accounts.user_deactivated", "User deactivated"
    USER_LOCKED = "accounts.user_locked", "User locked after failed attempts"
    USER_UNLOCKED = "accounts.user_unlocked", "User unlocked"
    FAILURES_CLEARED = "accounts.failures_cleared", "Failed-signature count cleared by a correct signature"
    PASSWORD_RESET = "accounts.password_reset", "Password reset issued (the person sets their own)"
    PASSWORD_SET = "accounts.password_set", "Password set by its owner"
    ROLE_GRANTED = "accounts.role_granted", "Role granted"
    ROLE_REVOKED = "accounts.role_revoked", "Role revoked"
    LOGGED_IN = "accounts.logged_in", "Logged in"
    LOGGED_OUT = "accounts.logged_out", "Logged out"
    IDLE_LOGOUT = "accounts.idle_logout", "Logged out after inactivity"
    LOGIN_FAILED = "accounts.login_failed", "Login refused"
    TOKEN_ISSUED = "accounts.token_issued", "API token issued"
    TOKEN_REVOKED = "accounts.token_revoked", "API token revoked"
    IDENTITY_LINKED = "accounts.identity_linked", "Hospital sign-on identity linked to a person"
    IDENTITY_REVOKED = "accounts.identity_revoked", "Hospital sign-on identity link revoked"
