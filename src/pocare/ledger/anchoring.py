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

FORMAT = "pocare-anchor/1"
STORE_ALIAS = "digests"


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
           now: dt.datetime | None = None) -> Anchored:
    """Sign the heads of every chain and lane and the triggers' fingerprint, and append the
    signed digest to the store. Refused (nothing written) when the latest stored digest is no
    longer a prefix of the chains: a new digest must never vouch for a rewritten history."""
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
            problems = _points_against_database(points)
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
                "rewritten between the two digests"), chain, seq))


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


def _points_against_database(points: dict[str, dict[int, tuple[str, str]]]) -> list[DigestProblem]:
    """For each chain, the first anchored position the database no longer holds as signed."""
    stored = _stored_hashes(points)
    heads = dict(ChainHead.objects.filter(chain__in=list(points)).values_list("chain", "seq"))
    problems = []
    for chain in sorted(points):
        pts = points[chain]
        if any(stored.get((chain, seq)) != pts[seq][0] for seq in pts):
            problems += _chain_against(chain, pts, {seq: h for (c, seq), h in stored.items() if c == chain},
                                       heads.get(chain))
    return problems


def _chain_against(chain: str, points: dict[int, tuple[str, str]], stored: dict[int, str],
                   head: int | None) -> list[DigestProblem]:
    """What happened at the first anchored position of ``chain`` that the database no longer
    holds as signed (one problem per chain: later positions follow from it)."""
    kind = "lane" if lane_number(chain) else "chain"
    seqs = sorted(points)
    last = Event.objects.filter(chain=chain).order_by("-seq").values_list("seq", flat=True).first() or 0
    if not last and head is None:
        s = seqs[-1]
        return [DigestProblem(points[s][1], (
            f"the {kind} {chain} has no events and no head any more, but this digest anchored it at #{s}: "
            f"it was deleted whole"), chain, s)]
    good = 0
    for s in seqs:
        signed, digest = points[s]
        now = stored.get(s)
        if now == signed:
            good = s
            continue
        if now is None and last < s:
            what = (f"the {kind} ends at #{last} (its head row says #{head if head is not None else 'nothing'}) but "
                    f"this digest anchored #{s}: events #{last + 1}–#{s} were deleted and the head moved back")
        elif now is None:
            what = "the event this digest anchored is missing: deleted"
        else:
            after = (f"; the {kind} still matches the digests at #{good}, so the change lies in #{good + 1}–#{s}"
                     if good else f"; no earlier anchor of this {kind} holds, so the change lies in #1–#{s}")
            what = (f"its hash is {now[:12]}…, this digest signed {signed[:12]}…: an event was edited and the "
                    f"{kind} re-hashed from there{after}")
        return [DigestProblem(digest, what, chain, s)]
    return []


@dataclass(frozen=True)
class _TriggerState:
    at: str
    triggers: dict[str, str]
    what: str  # "digest <name>" or "the install recorded in NETWORK#12"
    installed: bool


def trigger_installs() -> list[_TriggerState]:
    """The trigger fingerprints that ``audit triggers --install`` (and ``migrate``) recorded."""
    rows = Event.objects.filter(event_type=LedgerEvent.TRIGGERS_INSTALLED).order_by("occurred_at", "id")
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
            f"{', '.join(changed)} (dropped and re-created?)")))
    if states and states[-1].triggers != current.triggers:
        changed = current.changed(triggers.Fingerprint(states[-1].triggers, ""))
        problems.append(DigestProblem("(now)", (
            f"the append-only triggers differ from {states[-1].what}: {', '.join(changed)} were dropped and "
            "re-created, changed or added since, with no install recorded")))
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
    for i, name in enumerate(names):
        digest, why = _open(contents[name], keys)
        if digest is None:
            report.problems.append(DigestProblem(name, why))
            continue
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
        _collect_points(name, digest, points, report.problems)
        opened.append((name, digest))
    report.digests = len(opened)
    report.points = sum(len(p) for p in points.values())
    report.problems += _points_against_database(points)
    report.problems += _trigger_problems(opened, triggers.fingerprint(connection))
    if opened:
        report.latest = str(opened[-1][1]["created_at"])
        anchored = {c: max(p) for c, p in points.items()}
        for chain, seq in ChainHead.objects.values_list("chain", "seq"):
            if seq > anchored.get(chain, 0):
                report.unanchored[chain] = seq - anchored.get(chain, 0)
    return report


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
