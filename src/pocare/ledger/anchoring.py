"""Anchors: the heads of every chain and lane, signed with a key the database never holds and
kept in a store the database user cannot change (docs/ledger.md, "Anchors").

A hash chain proves that nothing changed *inside* it; someone who can write the database can
still rewrite an event and re-hash everything after it, head row included. An anchor is a
**digest** of the trail at one moment — for each chain and lane its last position, that event's
hash and time, and a fingerprint of the append-only triggers — signed with Ed25519 and appended
to the **digest store**. ``pocare audit verify --digests`` then proves that every stored digest
is still a prefix of today's chains: a re-hash after an edit, a moved head, a deleted tail, lane
or chain, and a re-created trigger all contradict a digest that was signed before them.

What it rests on: the private key (``POCARE_ANCHOR_KEY``) is a file outside the database, and
the store is written once (a directory of read-only files by default, object storage with a
retention lock in production). Anchoring is a plain function, :func:`anchor`, so that the
scheduler runs it as a job; ``pocare audit anchor`` runs it by hand.
"""

from __future__ import annotations

import base64
import datetime as dt
import hashlib
import itertools
import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from django.conf import settings
from django.core.files.base import ContentFile
from django.core.files.storage import FileSystemStorage, Storage, storages
from django.db import connection, transaction
from django.utils import timezone

from pocare.ledger import triggers
from pocare.ledger.canonical import canonical_json, format_timestamp, normalize_stored_timestamp
from pocare.ledger.events import LedgerEvent
from pocare.ledger.models import ChainHead, Event, lane_number, site_chain
from pocare.ledger.services import event_record
from pocare.ledger.verify import verify_all

FORMAT = "pocare-anchor/1"
STORE_ALIAS = "digests"

# What a digest finding is (DigestProblem.kind): a restore reads them to tell anchored history the
# archive does not reach (LOST) from an archive whose history is not the anchored one (EDITED, MISSING).
LOST = "lost"  # the anchored positions lie beyond the chain's end: a deleted tail, or a restore
EDITED = "edited"  # the position holds an event with another hash
MISSING = "missing"  # the position's event is gone though later ones exist
REWRITTEN = "rewritten"  # two digests anchored one position with two hashes
DIGEST = "digest"  # a digest file is unreadable, forged, altered or deleted
TRIGGERS = "triggers"  # the append-only triggers changed with no install recorded
ACKNOWLEDGEMENT = "acknowledgement"  # a restore's acknowledgement that does not hold


class AnchorError(Exception):
    """Anchoring or verifying digests cannot proceed (no key, an unsafe key file, a broken head);
    the message says what to do."""


# --- the key --------------------------------------------------------------------------------------


def key_fingerprint(public: Ed25519PublicKey) -> str:
    """How people name a public key: SHA-256 of its 32 raw bytes, in hex."""
    return hashlib.sha256(_raw(public)).hexdigest()


def _raw(public: Ed25519PublicKey) -> bytes:
    return public.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)


def public_key_path(key_path: Path) -> Path:
    return key_path.with_name(key_path.name + ".pub")


def key_init(path: Path) -> Ed25519PublicKey:
    """Make a new signing key at ``path`` (mode 0600, never over an existing file) and its public
    key beside it (``.pub``, readable by all: it is published with every digest)."""
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    private = Ed25519PrivateKey.generate()
    pem = private.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                serialization.NoEncryption())
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        raise AnchorError(f"{path} exists: a signing key is never overwritten (rotate by making a new one "
                          "under another name; docs/ledger.md, 'Key custody')") from None
    with os.fdopen(fd, "wb") as f:
        f.write(pem)
    public = private.public_key()
    pub = public_key_path(path)
    pub.write_bytes(public.public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo))
    pub.chmod(0o644)
    return public


def private_key(path: Path) -> Ed25519PrivateKey:
    """The signing key, refused when missing or readable by anyone but its owner."""
    try:
        mode = path.stat().st_mode
    except FileNotFoundError:
        raise AnchorError(f"No anchor key at {path}: run `pocare audit anchor --init-key` "
                          "(or set POCARE_ANCHOR_KEY).") from None
    if mode & 0o077:
        raise AnchorError(f"The anchor key {path} is readable by others (mode {mode & 0o777:o}); "
                          f"chmod 600 it before signing with it.")
    key = serialization.load_pem_private_key(path.read_bytes(), password=None)
    if not isinstance(key, Ed25519PrivateKey):
        raise AnchorError(f"{path} is not an Ed25519 private key.")
    return key


def trusted_keys(paths: list[Path] | None = None) -> dict[str, Ed25519PublicKey]:
    """The public keys whose digests are believed (``POCARE_ANCHOR_TRUSTED_KEYS``), by fingerprint."""
    keys = {}
    for path in paths if paths is not None else settings.POCARE_ANCHOR_TRUSTED_KEYS:
        try:
            key = serialization.load_pem_public_key(Path(path).read_bytes())
        except FileNotFoundError:
            continue
        if isinstance(key, Ed25519PublicKey):
            keys[key_fingerprint(key)] = key
    return keys


# --- the store ------------------------------------------------------------------------------------


class DigestDirectoryStorage(FileSystemStorage):
    """The default digest store: a directory of files, each written once (O_EXCL, as Django's
    file storage does unless told to overwrite), made read-only, and flushed to disk.

    Give the directory to the account POCare runs as, never to the database's (on PostgreSQL the
    server runs as another user and cannot reach it); for more, mount it append-only (``chattr
    +a``) or copy it off the machine. Object storage with a retention lock plugs in through
    ``STORAGES["digests"]`` in its place (docs/ledger.md)."""

    def __init__(self, **options: Any) -> None:
        options.setdefault("file_permissions_mode", 0o444)
        options.setdefault("directory_permissions_mode", 0o755)
        options["allow_overwrite"] = False
        super().__init__(**options)

    def save(self, name: str | None, content: Any, max_length: int | None = None) -> str:
        name = super().save(name, content, max_length=max_length)
        fd = os.open(self.path(name), os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)
        return name


class DigestStore:
    """The digests, one file each, named by their time (``2026-12-05/20261205T101500123456Z.json``)
    so that listing them sorts them. Any Django storage works: what is asked of it is ``save``
    without overwriting, ``listdir`` and ``open``."""

    def __init__(self, storage: Storage | None = None) -> None:
        self.storage = storage if storage is not None else storages[STORE_ALIAS]

    def append(self, created_at: dt.datetime, data: bytes) -> str:
        stamp = created_at.astimezone(dt.UTC)
        name = f"{stamp:%Y-%m-%d}/{stamp:%Y%m%dT%H%M%S%fZ}.json"
        return str(self.storage.save(name, ContentFile(data)))

    def names(self) -> list[str]:
        try:
            days, _ = self.storage.listdir("")
        except FileNotFoundError:
            return []
        return sorted(f"{day}/{name}" for day in days for name in self.storage.listdir(day)[1]
                      if name.endswith(".json"))

    def read(self, name: str) -> bytes:
        with self.storage.open(name, "rb") as f:
            return bytes(f.read())

    def latest_name(self) -> str | None:
        """The latest digest's name, listing the latest day that holds one (not the whole store:
        the health check asks at every probe)."""
        try:
            days, _ = self.storage.listdir("")
        except FileNotFoundError:
            return None
        for day in sorted(days, reverse=True):
            names = sorted(n for n in self.storage.listdir(day)[1] if n.endswith(".json"))
            if names:
                return f"{day}/{names[-1]}"
        return None


# --- making a digest ------------------------------------------------------------------------------


@dataclass(frozen=True)
class Head:
    """One chain's or lane's last event as anchored."""

    chain: str
    seq: int
    hash: str
    occurred_at: str | None

    def as_json(self) -> dict[str, Any]:
        return {"chain": self.chain, "site": site_chain(self.chain), "lane": lane_number(self.chain),
                "seq": self.seq, "hash": self.hash, "occurred_at": self.occurred_at}


_HEADS_SQL = (
    "SELECT h.chain, h.seq, h.hash, e.hash, e.occurred_at FROM ledger_chainhead h "
    "LEFT JOIN ledger_event e ON e.chain = h.chain AND e.seq = h.seq ORDER BY h.chain"
)


def current_heads() -> list[Head]:
    """Every chain's and lane's head, read with the event it points at. A head whose event is
    missing or hashes differently is refused: signing it would vouch for a broken chain."""
    heads, broken = [], []
    with connection.cursor() as cur:
        cur.execute(_HEADS_SQL)
        for chain, seq, head_hash, event_hash, occurred_at in cur.fetchall():
            if seq and event_hash != head_hash:
                broken.append(f"{chain}#{seq}")
                continue
            heads.append(Head(chain, int(seq), head_hash,
                              normalize_stored_timestamp(occurred_at) if occurred_at is not None else None))
    if broken:
        raise AnchorError(f"Not anchored: the head row and the chain disagree at {', '.join(broken)}; "
                          "run `pocare audit verify`.")
    return heads


@dataclass
class Anchored:
    name: str
    heads: int
    key: str
    triggers_sha256: str


def anchor(*, store: DigestStore | None = None, key_path: Path | None = None,
           now: dt.datetime | None = None, acknowledges: dict[str, Any] | None = None) -> Anchored:
    """Sign the heads of every chain and lane and the triggers' fingerprint, and append the
    signed digest to the store. Refused (nothing written) when the latest stored digest is no
    longer a prefix of the chains: a new digest must never vouch for a rewritten history.

    ``acknowledges`` (only from :func:`restore_loss_acknowledge`): the acknowledgement event and
    the anchored stretches a restore lost; the digest carries it, and those stretches alone are
    not held against the chains."""
    store = store or DigestStore()
    key = private_key(key_path or settings.POCARE_ANCHOR_KEY)
    names = store.names()
    previous = None
    if names:
        data = store.read(names[-1])
        previous = {"name": names[-1], "sha256": hashlib.sha256(data).hexdigest()}
        last = _parse(data)
        if last is not None:
            points: dict[str, dict[int, tuple[str, str]]] = {}
            _collect_points(names[-1], last, points, [])
            for loss in (acknowledges or {}).get("lost", []):
                for seq in [s for s in points.get(loss["chain"], {}) if loss["from"] <= s <= loss["to"]]:
                    del points[loss["chain"]][seq]
            problems = _points_against_database({c: p for c, p in points.items() if p})
            if problems:
                raise AnchorError("Not anchored: " + "; ".join(p.line() for p in problems))
    heads = current_heads()  # one query: one snapshot of every head
    fingerprint = triggers.fingerprint(connection)
    created_at = now or timezone.now()
    digest = {
        "format": FORMAT,
        "created_at": format_timestamp(created_at),
        "heads": [h.as_json() for h in heads],
        "triggers": fingerprint.triggers,
        "triggers_sha256": fingerprint.sha256,
        "previous": previous,
    }
    if acknowledges:
        digest["acknowledges"] = acknowledges
    public = key.public_key()
    fingerprint_of_key = key_fingerprint(public)
    envelope = {
        "digest": digest,
        "signature": base64.b64encode(key.sign(canonical_json(digest).encode())).decode(),
        "public_key": base64.b64encode(_raw(public)).decode(),
        "key": fingerprint_of_key,
    }
    name = store.append(created_at, (canonical_json(envelope) + "\n").encode())
    return Anchored(name=name, heads=len(heads), key=fingerprint_of_key, triggers_sha256=fingerprint.sha256)


# --- verifying the digests ------------------------------------------------------------------------


@dataclass
class DigestProblem:
    """Something a stored digest contradicts: which digest, which chain and position, what."""

    digest: str
    problem: str
    chain: str = ""
    seq: int | None = None
    kind: str = DIGEST
    # With kind LOST: the anchored events #lost_from–#seq are not in the database; ``hash`` is the one
    # signed at #seq, ``anchored_at`` when, and ``digests`` every digest that anchored a position among them.
    lost_from: int | None = None
    hash: str = ""
    anchored_at: str = ""
    digests: list[str] = field(default_factory=list)

    def line(self) -> str:
        where = f"{self.chain}#{self.seq}: " if self.chain and self.seq is not None else (
            f"{self.chain}: " if self.chain else "")
        return f"{where}{self.problem}"


@dataclass
class DigestReport:
    digests: int = 0
    points: int = 0  # distinct (chain, position) anchored
    problems: list[DigestProblem] = field(default_factory=list)
    latest: str = ""  # the latest digest's time
    unanchored: dict[str, int] = field(default_factory=dict)  # chain -> events after its last anchor
    # Anchored history a restore lost and an acknowledgement recorded and anchored (shown on every run).
    acknowledged: list[dict[str, Any]] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return self.digests > 0 and not self.problems


def _parse(data: bytes) -> dict[str, Any] | None:
    try:
        envelope = json.loads(data)
        digest = envelope["digest"]
        return digest if isinstance(digest, dict) and digest.get("format") == FORMAT else None
    except (ValueError, KeyError, TypeError):
        return None


def _open(data: bytes, keys: dict[str, Ed25519PublicKey]) -> tuple[dict[str, Any] | None, str]:
    """The digest in a stored file if its signature verifies against a trusted key, else why not."""
    try:
        envelope = json.loads(data)
        digest, signature = envelope["digest"], base64.b64decode(envelope["signature"], validate=True)
        public = Ed25519PublicKey.from_public_bytes(base64.b64decode(envelope["public_key"], validate=True))
    except (ValueError, KeyError, TypeError):
        return None, "not a readable signed digest (damaged or not POCare's)"
    if not isinstance(digest, dict) or digest.get("format") != FORMAT:
        return None, f"not a {FORMAT} digest"
    fingerprint = key_fingerprint(public)
    if fingerprint not in keys:
        return None, f"signed by key {fingerprint[:16]}…, which is not a trusted anchor key (forged?)"
    try:
        keys[fingerprint].verify(signature, canonical_json(digest).encode())
    except InvalidSignature:
        return None, "the signature does not verify: the digest was altered or forged after signing"
    return digest, ""


def latest_digest(store: DigestStore | None = None, keys: dict[str, Ed25519PublicKey] | None = None,
                  ) -> tuple[str | None, dt.datetime | None, str]:
    """The latest stored digest: its name, when it was signed, and "" when its signature verifies
    against a trusted key (else why not). ``(None, None, why)`` when the store holds none."""
    store = store or DigestStore()
    name = store.latest_name()
    if name is None:
        return None, None, "no signed digest in the store yet"
    digest, why = _open(store.read(name), trusted_keys() if keys is None else keys)
    if digest is None:
        return name, None, why
    return name, dt.datetime.fromisoformat(str(digest["created_at"]).replace("Z", "+00:00")), ""


def _collect_points(name: str, digest: dict[str, Any], points: dict[str, dict[int, tuple[str, str]]],
                    problems: list[DigestProblem]) -> None:
    """Add a digest's anchored positions; two digests anchoring one position with two hashes
    mean the history was rewritten between them (and anchored again)."""
    for head in digest.get("heads", []):
        chain, seq, hash_ = str(head["chain"]), int(head["seq"]), str(head["hash"])
        if seq == 0:
            continue  # a lane opened and never written to: nothing to protect
        known = points.setdefault(chain, {}).get(seq)
        if known is None:
            points[chain][seq] = (hash_, name)
        elif known[0] != hash_:
            problems.append(DigestProblem(name, (
                f"digest {known[1]} anchored it as {known[0][:12]}…, this one as {hash_[:12]}…: the chain was "
                "rewritten between the two digests"), chain, seq, kind=REWRITTEN))


def _stored_hashes(points: dict[str, dict[int, tuple[str, str]]]) -> dict[tuple[str, int], str]:
    """The hash the database holds at each anchored (chain, position), in a few queries whatever
    the number of chains: the positions are joined to the events' (chain, seq) index in chunks."""
    pairs = [(chain, seq) for chain, pts in points.items() for seq in pts]
    stored: dict[tuple[str, int], str] = {}
    with connection.cursor() as cur:
        for i in range(0, len(pairs), 500):
            chunk = pairs[i:i + 500]
            values = ", ".join(["(%s, %s)"] * len(chunk))
            cur.execute(f"WITH p(chain, seq) AS (VALUES {values}) SELECT e.chain, e.seq, e.hash "  # noqa: S608
                        "FROM p JOIN ledger_event e ON e.chain = p.chain AND e.seq = p.seq",
                        [x for pair in chunk for x in pair])
            stored.update({(chain, int(seq)): hash_ for chain, seq, hash_ in cur.fetchall()})
    return stored


def _points_against_database(points: dict[str, dict[int, tuple[str, str]]],
                             times: dict[str, str] | None = None) -> list[DigestProblem]:
    """For each chain, the first anchored position the database no longer holds as signed
    (``times``: each digest's time, to say when a lost stretch was anchored)."""
    stored = _stored_hashes(points)
    heads = dict(ChainHead.objects.filter(chain__in=list(points)).values_list("chain", "seq"))
    problems = []
    for chain in sorted(points):
        pts = points[chain]
        if any(stored.get((chain, seq)) != pts[seq][0] for seq in pts):
            problems += _chain_against(chain, pts, {seq: h for (c, seq), h in stored.items() if c == chain},
                                       heads.get(chain), times or {})
    return problems


def _chain_against(chain: str, points: dict[int, tuple[str, str]], stored: dict[int, str],
                   head: int | None, times: dict[str, str]) -> list[DigestProblem]:
    """What happened at the first anchored position of ``chain`` that the database no longer
    holds as signed (one problem per chain: later positions follow from it)."""
    kind = "lane" if lane_number(chain) else "chain"
    seqs = sorted(points)
    last = Event.objects.filter(chain=chain).order_by("-seq").values_list("seq", flat=True).first() or 0

    def lost(first: int, what: str) -> list[DigestProblem]:
        # Every anchored position from ``first`` on lies beyond the chain's end: one stretch, named
        # up to the highest anchored position, with every digest that anchored part of it.
        top = seqs[-1]
        signed, digest = points[top]
        return [DigestProblem(digest, what, chain, top, kind=LOST, lost_from=first, hash=signed,
                              anchored_at=times.get(digest, ""),
                              digests=sorted({points[s][1] for s in seqs if s >= first}))]

    if not last and head is None:
        return lost(1, f"the {kind} {chain} has no events and no head any more, but this digest anchored it at "
                       f"#{seqs[-1]}: it was deleted whole (or a restore from an older backup lost it)")
    good = 0
    for s in seqs:
        signed, digest = points[s]
        now = stored.get(s)
        if now == signed:
            good = s
            continue
        if now is None and last < s:
            return lost(last + 1, (
                f"the {kind} ends at #{last} (its head row says #{head if head is not None else 'nothing'}) but "
                f"this digest anchored #{seqs[-1]}: events #{last + 1}–#{seqs[-1]} were deleted and the head moved "
                "back (or a restore from an older backup lost them)"))
        if now is None:
            return [DigestProblem(digest, "the event this digest anchored is missing: deleted", chain, s,
                                  kind=MISSING)]
        after = (f"; the {kind} still matches the digests at #{good}, so the change lies in #{good + 1}–#{s}"
                 if good else f"; no earlier anchor of this {kind} holds, so the change lies in #1–#{s}")
        return [DigestProblem(digest, (f"its hash is {now[:12]}…, this digest signed {signed[:12]}…: an event was "
                                       f"edited and the {kind} re-hashed from there{after}"), chain, s, kind=EDITED)]
    return []


@dataclass(frozen=True)
class _TriggerState:
    at: str
    triggers: dict[str, str]
    what: str  # "digest <name>" or "the install recorded in NETWORK#12"
    installed: bool


def trigger_installs() -> list[_TriggerState]:
    """The trigger fingerprints that ``audit triggers --install`` (and ``migrate``) recorded."""
    # A restore's acknowledgement records the triggers too: a PostgreSQL restore re-creates them.
    rows = Event.objects.filter(event_type__in=[LedgerEvent.TRIGGERS_INSTALLED, LedgerEvent.RESTORE_LOSS_ACKNOWLEDGED],
                                ).order_by("occurred_at", "id")
    return [_TriggerState(format_timestamp(e.occurred_at), dict(e.new.get("triggers", {})),
                          f"the install recorded in {e.label}", True) for e in rows]


def _trigger_problems(digests: list[tuple[str, dict[str, Any]]], current: triggers.Fingerprint,
                      ) -> list[DigestProblem]:
    """Between two consecutive fingerprints (digests and recorded installs, in time order), and
    between the last of them and the catalog now, the triggers may change only by an install."""
    states = [_TriggerState(str(d["created_at"]), dict(d.get("triggers", {})), f"digest {name}", False)
              for name, d in digests] + trigger_installs()
    states.sort(key=lambda s: s.at)
    problems = []
    for before, after in itertools.pairwise(states):
        if after.installed or before.triggers == after.triggers:
            continue
        changed = triggers.Fingerprint(before.triggers, "").changed(triggers.Fingerprint(after.triggers, ""))
        problems.append(DigestProblem(after.what.removeprefix("digest "), (
            f"the append-only triggers changed between {before.what} and this digest with no install recorded: "
            f"{', '.join(changed)} (dropped and re-created?)"), kind=TRIGGERS))
    if states and states[-1].triggers != current.triggers:
        changed = current.changed(triggers.Fingerprint(states[-1].triggers, ""))
        problems.append(DigestProblem("(now)", (
            f"the append-only triggers differ from {states[-1].what}: {', '.join(changed)} were dropped and "
            "re-created, changed or added since, with no install recorded"), kind=TRIGGERS))
    return problems


def triggers_since_recorded(store: DigestStore | None = None,
                            keys: dict[str, Ed25519PublicKey] | None = None) -> tuple[str, list[str]]:
    """What the catalog's triggers are compared with (the latest trusted digest or recorded
    install, whichever is later) and the triggers that differ from it; ("", []) when nothing was
    recorded yet."""
    store = store or DigestStore()
    keys = trusted_keys() if keys is None else keys
    states = trigger_installs()
    for name in reversed(store.names()):
        digest, _ = _open(store.read(name), keys)
        if digest is not None:
            states.append(_TriggerState(str(digest["created_at"]), dict(digest.get("triggers", {})),
                                        f"digest {name}", False))
            break
    if not states:
        return "", []
    latest = max(states, key=lambda s: s.at)
    return latest.what, triggers.fingerprint(connection).changed(triggers.Fingerprint(latest.triggers, ""))


def verify_digests(*, store: DigestStore | None = None,
                   keys: dict[str, Ed25519PublicKey] | None = None) -> DigestReport:
    """Prove every stored digest is a prefix of today's chains: each digest is signed by a trusted
    key and names the digest before it; each anchored position still holds the event with the
    signed hash; no anchored chain or lane is gone; the triggers changed only by recorded installs.
    The walk of each chain to its head is ``verify_all``'s (run both: `audit verify --digests`)."""
    store = store or DigestStore()
    keys = trusted_keys() if keys is None else keys
    if not keys:
        raise AnchorError("No trusted anchor public key: set POCARE_ANCHOR_TRUSTED_KEYS (or make a key "
                          "with `pocare audit anchor --init-key`).")
    report = DigestReport()
    names = store.names()
    contents = {name: store.read(name) for name in names}
    points: dict[str, dict[int, tuple[str, str]]] = {}
    opened: list[tuple[str, dict[str, Any]]] = []
    times: dict[str, str] = {}
    acknowledging: set[tuple[str, int]] = set()  # the acknowledgement events the digests carry
    for i, name in enumerate(names):
        digest, why = _open(contents[name], keys)
        if digest is None:
            report.problems.append(DigestProblem(name, why))
            continue
        times[name] = str(digest.get("created_at", ""))
        previous = digest.get("previous")
        if previous:
            if previous.get("name") not in contents:
                report.problems.append(DigestProblem(name, (
                    f"it follows digest {previous.get('name')}, which the store no longer holds: deleted")))
            elif hashlib.sha256(contents[previous["name"]]).hexdigest() != previous.get("sha256"):
                report.problems.append(DigestProblem(name, f"the digest before it, {previous['name']}, changed since"))
        elif i > 0:
            report.problems.append(DigestProblem(name, "it names no digest before it, though the store holds earlier "
                                                       "ones (a digest made elsewhere?)"))
        if digest.get("acknowledges"):
            _acknowledgement_apply(name, digest, points, report, acknowledging)
        _collect_points(name, digest, points, report.problems)
        opened.append((name, digest))
    report.digests = len(opened)
    report.points = sum(len(p) for p in points.values())
    report.problems += _points_against_database(points, times)
    report.problems += _trigger_problems(opened, triggers.fingerprint(connection))
    acks = Event.objects.filter(event_type=LedgerEvent.RESTORE_LOSS_ACKNOWLEDGED)
    for chain, seq in acks.values_list("chain", "seq"):
        if (chain, seq) not in acknowledging:
            report.problems.append(DigestProblem("(none)", (
                "it records an acknowledged loss that no signed digest carries: it acknowledges nothing (written "
                "outside `pocare audit restored`?)"), chain, seq, kind=ACKNOWLEDGEMENT))
    if opened:
        report.latest = str(opened[-1][1]["created_at"])
        anchored = {c: max(p) for c, p in points.items()}
        for chain, seq in ChainHead.objects.values_list("chain", "seq"):
            if seq > anchored.get(chain, 0):
                report.unanchored[chain] = seq - anchored.get(chain, 0)
    return report


# --- a restore from an older backup: the anchored history it lost, acknowledged --------------------


def _acknowledgement_apply(name: str, digest: dict[str, Any], points: dict[str, dict[int, tuple[str, str]]],
                           report: DigestReport, acknowledging: set[tuple[str, int]]) -> None:
    """Let a signed acknowledgement (digest ``name``) set aside the anchored stretches it names,
    so that the positions a restore lost no longer count against the chains; the digest's own
    heads (the chains as they were at the cut) and every later digest are held against them again.

    It counts only when it holds exactly: its event is in the trail with the signed hash and states
    the same losses, and each stretch is the whole of what the digests before it anchored from
    its first position on, ending at the signed hash. Otherwise it is a finding and sets nothing
    aside, so that the losses stay findings too."""
    ack = digest["acknowledges"]
    try:
        ref, lost = ack["event"], ack["lost"]
        chain, seq, hash_ = str(ref["chain"]), int(ref["seq"]), str(ref["hash"])
        stretches = [(str(x["chain"]), int(x["from"]), int(x["to"]), str(x["hash"])) for x in lost]
    except (KeyError, TypeError, ValueError):
        report.problems.append(DigestProblem(name, "it carries an acknowledgement that is not readable",
                                             kind=ACKNOWLEDGEMENT))
        return
    acknowledging.add((chain, seq))
    event = Event.objects.filter(chain=chain, seq=seq).first()
    if (event is None or event.hash != hash_ or event.event_type != LedgerEvent.RESTORE_LOSS_ACKNOWLEDGED
            or event.new.get("lost") != lost):
        report.problems.append(DigestProblem(name, (
            f"it signs the acknowledgement {chain}#{seq}, which the trail no longer holds as signed: the "
            "acknowledged losses count as losses"), chain, seq, kind=ACKNOWLEDGEMENT))
        return
    wrong = []
    for c, first, last, signed in stretches:
        beyond = sorted(s for s in points.get(c, {}) if s >= first)
        if not beyond or beyond[-1] != last or points[c][last][0] != signed:
            wrong.append(f"{c} #{first}–#{last}")
    if wrong:
        report.problems.append(DigestProblem(name, (
            f"its acknowledgement {event.label} does not match what the digests before it anchored "
            f"({', '.join(wrong)}): it sets nothing aside"), chain, seq, kind=ACKNOWLEDGEMENT))
        return
    for c, first, last, _signed in stretches:
        set_aside = sorted(s for s in points[c] if s >= first)
        report.acknowledged.append({
            "chain": c, "from": first, "to": last, "anchored_at": next(
                (x.get("anchored_at", "") for x in lost if x.get("chain") == c), ""),
            "digests": sorted({points[c][s][1] for s in set_aside}), "event": event.label,
            "deviation": str(event.new.get("deviation", "")), "reason": event.reason,
            "acknowledged_in": name, "acknowledged_at": str(digest.get("created_at", "")),
        })
        for s in set_aside:
            del points[c][s]


@dataclass
class LossAcknowledged:
    event: str  # the acknowledgement's event, ``NETWORK#812``
    digest: str  # the digest that anchors it
    lost: list[dict[str, Any]]


def restore_loss_acknowledge(*, reason: str, deviation: str, system: str = "audit restored",
                             store: DigestStore | None = None, key_path: Path | None = None,
                             now: dt.datetime | None = None) -> LossAcknowledged:
    """After a restore from a backup older than the latest digest: record, in the network chain,
    which anchored stretches of which chains the restore lost (and the triggers as they are, which
    a PostgreSQL restore re-creates), and anchor at once a digest that carries the acknowledgement
    and signs the chains as they now are: the cut-over (docs/ledger.md, "A restore from an older
    backup").

    Refused, with nothing written, unless the chains walk intact and every digest finding is a
    lost tail (or the triggers): an edit, a missing event in the middle, a position now holding
    another event, a forged or deleted digest are never acknowledged."""
    reason, deviation = reason.strip(), deviation.strip()
    if not reason or not deviation:
        raise AnchorError("Say why and name the deviation (--reason and --deviation): both are recorded in the trail.")
    if len(deviation) > 100:
        raise AnchorError("--deviation: the deviation's reference, at most 100 characters.")
    store = store or DigestStore()
    private_key(key_path or settings.POCARE_ANCHOR_KEY)  # no key, nothing recorded
    if not verify_all().ok:
        raise AnchorError("Not acknowledged: the audit trail does not verify; run `pocare audit verify`.")
    found = verify_digests(store=store)
    lost = [p for p in found.problems if p.kind == LOST]
    other = [p for p in found.problems if p.kind not in (LOST, TRIGGERS)]
    if other:
        raise AnchorError("Not acknowledged: the digests find more than history lost at the chains' ends, which no "
                          "acknowledgement covers: " + "; ".join(f"digest {p.digest}: {p.line()}" for p in other[:5]))
    if not lost:
        raise AnchorError("Nothing to acknowledge: every anchored position is in the database.")
    entries = [{"chain": p.chain, "from": p.lost_from, "to": p.seq, "hash": p.hash, "anchored_at": p.anchored_at,
                "digests": p.digests} for p in lost]
    fingerprint = triggers.fingerprint(connection)
    with transaction.atomic():  # the event commits only once the digest that carries it is stored
        event = event_record(actor=None, system=system, event_type=LedgerEvent.RESTORE_LOSS_ACKNOWLEDGED,
                             reason=reason, new={"deviation": deviation, "lost": entries,
                                                 "triggers": fingerprint.triggers,
                                                 "triggers_sha256": fingerprint.sha256})
        done = anchor(store=store, key_path=key_path, now=now, acknowledges={
            "event": {"chain": event.chain, "seq": event.seq, "hash": event.hash},
            "deviation": deviation, "lost": entries})
    return LossAcknowledged(event=event.label, digest=done.name, lost=entries)


def triggers_install(*, system: str, reason: str = "", acknowledge: bool = False) -> list[str]:
    """Create missing append-only triggers and record, in the trail, the triggers' fingerprint
    after it, so that a later digest that finds them changed knows this change was an install.
    ``acknowledge`` records it even when nothing was missing (after a re-creation was found and
    investigated: the finding before it stays in the digests' history)."""
    created = triggers.install(connection)
    if created or acknowledge:
        fingerprint = triggers.fingerprint(connection)
        with transaction.atomic():
            event_record(actor=None, system=system, event_type=LedgerEvent.TRIGGERS_INSTALLED,
                         reason=reason or "Append-only triggers restored",
                         new={"created": created, "triggers": fingerprint.triggers,
                              "triggers_sha256": fingerprint.sha256})
    return created
