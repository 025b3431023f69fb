"""What the ledger asks of the apps above it (pocare.core.registry)."""

from __future__ import annotations

from pocare.core.registry import Question

#: Are these the signer's credentials? Called as ``(user=, password=, context=)``; returns nothing
#: and raises :class:`pocare.ledger.signing.SigningRefused`, naming the field, when they are not.
#: A wrong password counts toward the account lock, a right one clears the count (P11-200,
#: P11-300). Answered by accounts, which owns passwords and locks.
CREDENTIALS_CHECK: Question[None] = Question(
    "ledger.credentials_check",
    "Are these the signer's credentials? Refuse naming the field, and count a failure toward the lock.",
    single=True,
)
