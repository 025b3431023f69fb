"""The ledger: an append-only, hash-chained audit trail and the electronic signatures bound to it.

Nothing here is ever updated or deleted. The ORM refuses it (``save`` on an existing row,
``QuerySet.update/delete``, ``bulk_*``) and, below the ORM, database triggers created in the
migrations refuse UPDATE and DELETE on SQLite and PostgreSQL alike. What someone with direct
database access could still do — drop the triggers and edit — is found by the hash chain
(`pocare audit verify`).
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from typing import Any, NoReturn

from django.conf import settings
from django.db import models

from pocare.ledger.canonical import format_timestamp


class LedgerImmutableError(Exception):
    """Raised when code tries to change or remove a ledger row."""


class AppendOnlyQuerySet(models.QuerySet[Any]):
    """A queryset with no write back door: rows are only ever inserted, one by one."""

    def update(self, **kwargs: Any) -> NoReturn:
        raise LedgerImmutableError(f"{self.model.__name__} rows are append-only")

    def delete(self) -> NoReturn:
        raise LedgerImmutableError(f"{self.model.__name__} rows are append-only")

    def bulk_update(self, *args: Any, **kwargs: Any) -> NoReturn:
        raise LedgerImmutableError(f"{self.model.__name__} rows are append-only")

    def bulk_create(self, *args: Any, **kwargs: Any) -> NoReturn:
        raise LedgerImmutableError(f"{self.model.__name__} rows are written only by the ledger service")


class AppendOnlyModel(models.Model):
    """Base for rows that are written once and never changed."""

    objects = AppendOnlyQuerySet.as_manager()

    class Meta:
        abstract = True

    def save(self, *args: Any, **kwargs: Any) -> None:
        if not self._state.adding:
            raise LedgerImmutableError(f"{type(self).__name__} rows are append-only")
        kwargs["force_insert"] = True
        super().save(*args, **kwargs)

    def delete(self, *args: Any, **kwargs: Any) -> NoReturn:
        raise LedgerImmutableError(f"{type(self).__name__} rows are append-only")


NETWORK_CHAIN = "NETWORK"

# A site's trail is written on up to MAX_LANES lanes, each a hash chain of its own: lane 0 is named
# by the site's code (``MAD``), lane n by ``MAD/n``. An append takes the first lane nobody else is
# appending to, so writers at one site do not queue behind one another; a quiet site has one
# chain. See docs/ledger.md ("Lanes").
LANE_SEPARATOR = "/"
MAX_LANES = 32


def lane_chain(chain: str, lane: int) -> str:
    """The name of lane ``lane`` of ``chain``: ``MAD``, ``MAD/1``, …"""
    if not 0 <= lane < MAX_LANES:
        raise ValueError(f"lane {lane} is outside 0..{MAX_LANES - 1}")
    return chain if lane == 0 else f"{chain}{LANE_SEPARATOR}{lane}"


def lane_chains(chain: str, lanes: int = MAX_LANES) -> list[str]:
    """The names of the first ``lanes`` lanes of ``chain`` (all it may ever have by default)."""
    return [lane_chain(chain, n) for n in range(lanes)]


def site_chain(chain: str) -> str:
    """The site (or network) chain a lane belongs to: ``MAD/3`` → ``MAD``."""
    return chain.partition(LANE_SEPARATOR)[0]


def lane_number(chain: str) -> int:
    """Which lane of its chain ``chain`` is: ``MAD/3`` → 3, ``MAD`` → 0."""
    _, sep, n = chain.partition(LANE_SEPARATOR)
    return int(n) if sep and n.isdigit() else 0


def chains_with_lanes(chains: Iterable[str]) -> list[str]:
    """Every lane of each chain, for filters that mean "this site's trail"."""
    return [lane for chain in chains for lane in lane_chains(site_chain(chain))]


class Event(AppendOnlyModel):
    """One audit-trail event: who did what to which record, when, why, from which request.

    Events form one hash chain per site (``chain`` is the site's code) plus the ``NETWORK``
    chain for network-wide records (accounts, tokens); see docs/ledger.md for why. Under
    concurrent appends a site's trail spreads over lanes, ``MAD/1`` …, each a chain of its own.
    """

    chain = models.CharField(max_length=16)
    seq = models.PositiveBigIntegerField(help_text="Position in the chain, from 1, without gaps.")
    prev_hash = models.CharField(max_length=64)
    hash = models.CharField(max_length=64)
    event_type = models.CharField(max_length=64)
    occurred_at = models.DateTimeField(db_index=True, help_text="UTC, from the server clock.")
    actor = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    actor_username = models.CharField(max_length=150)
    actor_printed_name = models.CharField(max_length=200)
    object_type = models.CharField(max_length=100, blank=True)
    object_id = models.CharField(max_length=64, blank=True)
    object_repr = models.CharField(max_length=200, blank=True)
    reason = models.TextField(blank=True)
    request_id = models.CharField(max_length=64)
    old_values = models.TextField(default="{}", help_text="Canonical JSON of the values before.")
    new_values = models.TextField(default="{}", help_text="Canonical JSON of the values after.")

    class Meta:
        db_table = "ledger_event"
        ordering = ["id"]
        constraints = [
            models.UniqueConstraint(fields=["chain", "seq"], name="ledger_event_chain_seq_unique")
        ]
        # Every index is paid on every append: only those the audit browser's filters need. The
        # actor's foreign key has its own; event_type gets a plain one (no LIKE index on PostgreSQL);
        # a person's latest events (home page, the trail's user filter) are read newest first.
        indexes = [
            models.Index(fields=["object_type", "object_id"], name="ledger_event_object_idx"),
            models.Index(fields=["event_type"], name="ledger_event_type_idx"),
            models.Index(fields=["actor_username", "-id"], name="ledger_event_actor_idx"),
        ]

    def __str__(self) -> str:
        return f"{self.label}: {self.event_type}"

    @property
    def label(self) -> str:
        """How people name an event: its chain and position, e.g. ``BCN#57`` or ``MAD/2#8``."""
        return f"{self.chain}#{self.seq}"

    @property
    def site_code(self) -> str:
        """The site (or ``NETWORK``) whose trail the event belongs to, whatever its lane."""
        return site_chain(self.chain)

    @property
    def old(self) -> dict[str, Any]:
        return dict(json.loads(self.old_values))

    @property
    def new(self) -> dict[str, Any]:
        return dict(json.loads(self.new_values))

    def hashed_fields(self) -> tuple[Any, ...]:
        return (
            self.chain,
            self.seq,
            self.prev_hash,
            self.event_type,
            format_timestamp(self.occurred_at),
            self.actor_id,
            self.actor_username,
            self.actor_printed_name,
            self.object_type,
            self.object_id,
            self.object_repr,
            self.reason,
            self.request_id,
            self.old_values,
            self.new_values,
        )


# The identity keys by which pages find the events about one patient's material: the chain of
# identity (COI, also stated as the "order" of a deviation) and the ISBT 128 donation identification
# number (DIN), wherever an event's old or new values carry them. Indexed in EventSubject, so that
# no page searches the events' text.
SUBJECT_FIELDS = ("coi", "din", "order")


class EventSubject(models.Model):
    """An index row: ``event`` states a value of ``key`` (a COI or a DIN) in its old or new values.

    Derived from the hashed event, written in the same transaction by ``event_record``; it holds
    nothing the chain does not, and can be rebuilt from the events (as migration 0005 built it).
    Pages ask it instead of text-searching the ledger.
    """

    event = models.ForeignKey(Event, on_delete=models.PROTECT, related_name="subjects")
    key = models.CharField(max_length=64)

    class Meta:
        db_table = "ledger_eventsubject"
        indexes = [models.Index(fields=["key", "event"], name="ledger_subject_key_idx")]

    def __str__(self) -> str:
        return f"{self.key} in event {self.event_id}"


def subject_keys(*values: Mapping[str, Any]) -> set[str]:
    """The COI and DIN values stated in an event's old and new values."""
    return {str(v)[:64] for mapping in values for name in SUBJECT_FIELDS
            if isinstance(v := mapping.get(name), str | int) and str(v)}


class ChainHead(models.Model):
    """The last event of each chain (each lane). Appends lock this row, so a chain never forks.

    It is a lock and a tail marker, not evidence: `audit verify` compares it with the chain so
    that a deleted last event is found too.
    """

    chain = models.CharField(max_length=16, primary_key=True)
    seq = models.PositiveBigIntegerField(default=0)
    hash = models.CharField(max_length=64)

    class Meta:
        db_table = "ledger_chainhead"

    def __str__(self) -> str:
        return f"{self.chain}#{self.seq}"


class Meaning(models.TextChoices):
    """What a signature means (P11-50): shown beside the signer's name on every display."""

    AUTHORED = "authored", "Authored"
    REVIEWED = "reviewed", "Reviewed"
    APPROVED = "approved", "Approved"
    VERIFIED = "verified", "Verified"
    PERFORMED = "performed", "Performed"
    RELEASED = "released", "Released"
    REJECTED = "rejected", "Rejected"
    ACKNOWLEDGED = "acknowledged", "Acknowledged"


class Signature(AppendOnlyModel):
    """An electronic signature (21 CFR 11.50/11.70): a person, a meaning, a time and the
    SHA-256 of exactly what was signed. It is valid while the record still hashes the same."""

    signer = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+")
    signer_username = models.CharField(max_length=150)
    signer_printed_name = models.CharField(max_length=200)
    meaning = models.CharField(max_length=20, choices=Meaning.choices)
    signed_at = models.DateTimeField()
    record_type = models.CharField(max_length=100, help_text="app_label.ModelName of the signed record")
    record_id = models.CharField(max_length=64)
    record_repr = models.CharField(max_length=200)
    record_hash = models.CharField(max_length=64, help_text="SHA-256 of the record's canonical content")
    chain = models.CharField(max_length=16)
    event = models.OneToOneField(Event, on_delete=models.PROTECT, related_name="signature")

    class Meta:
        db_table = "ledger_signature"
        ordering = ["signed_at", "id"]
        indexes = [models.Index(fields=["record_type", "record_id"], name="ledger_sig_record_idx")]

    def __str__(self) -> str:
        return f"{self.get_meaning_display()} by {self.signer_printed_name} at {self.signed_at:%Y-%m-%d %H:%M:%S} UTC"


class AuditReview(AppendOnlyModel):
    """A signed review of a stretch of one site's audit trail (A11-9, A11-12).

    The reviewer states what they looked at (events ``from_seq``..``to_seq`` of ``chain``, whose
    last hash was ``to_hash``, and, where the site's trail has more lanes, the same for each lane
    in ``lanes``) and signs it with the meaning *reviewed*.
    """

    chain = models.CharField(max_length=16)
    from_seq = models.PositiveBigIntegerField()
    to_seq = models.PositiveBigIntegerField()
    to_hash = models.CharField(max_length=64)
    lanes = models.JSONField(
        default=dict, blank=True,
        help_text='The other lanes of the chain reviewed: {"MAD/1": {"from_seq": 1, "to_seq": 9, "to_hash": "…"}}.',
    )
    comment = models.TextField()
    reviewer = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+")
    created_at = models.DateTimeField()

    class Meta:
        db_table = "ledger_auditreview"
        ordering = ["-created_at"]

    def __str__(self) -> str:
        return f"Review of {self.range_label}"

    @property
    def ranges(self) -> dict[str, tuple[int, int, str]]:
        """Every lane the review covers (the chain itself first) → (from_seq, to_seq, to_hash)."""
        out = {self.chain: (self.from_seq, self.to_seq, self.to_hash)}
        for lane, r in sorted((self.lanes or {}).items()):
            out[lane] = (int(r["from_seq"]), int(r["to_seq"]), str(r["to_hash"]))
        return out

    @property
    def range_label(self) -> str:
        """``MAD#1–57``, with each further lane reviewed: ``MAD#1–57, MAD/1#1–12``."""
        return ", ".join(f"{lane}#{lo}–{hi}" for lane, (lo, hi, _) in self.ranges.items() if hi >= lo) or (
            f"{self.chain} (nothing new)")

    def covers(self, chain: str) -> int:
        """The last position of ``chain`` (one of the lanes) this review reaches, 0 if none."""
        r = self.ranges.get(chain)
        return r[1] if r else 0

    def signed_content(self) -> dict[str, Any]:
        """The content the reviewer's signature binds to (``lanes`` only when there are any, so
        reviews signed before lanes existed keep their hash)."""
        content: dict[str, Any] = {
            "chain": self.chain,
            "from_seq": self.from_seq,
            "to_seq": self.to_seq,
            "to_hash": self.to_hash,
            "comment": self.comment,
            "reviewer_id": self.reviewer_id,
            "created_at": self.created_at,
        }
        if self.lanes:
            content["lanes"] = self.lanes
        return content
