#!/usr/bin/env python3
"""Check a POCare inspector bundle offline, with nothing but Python's standard library.

    python3 verify_bundle.py bundle.zip     # the zip as exported
    python3 verify_bundle.py                # from the unzipped folder (or: verify_bundle.py FOLDER)

What it checks, in this order (REQUIREMENTS.md P11-10b, P11-70, ATMP-TRACE):

1. ``manifest.sha256`` holds the SHA-256 of ``manifest.json``;
2. every file the manifest lists is there and has the SHA-256 the manifest states, and nothing
   else is in the zip;
3. the canonical content hash of ``batch.json`` is the one the manifest states;
4. every event of ``ledger.jsonl`` hashes to its stored hash under the ledger's canonical rule
   (format ``pocare-ledger/1``), events of one chain with consecutive positions link
   (``prev_hash`` = the previous event's hash), and the first and last events and the counts are
   those the manifest states;
5. every signature of ``signatures.json`` has its ``ledger.record_signed`` event in the slice,
   naming the same record, meaning, signer and record hash; and for each signature listed as
   valid, the signed content it lists hashes to that record hash.

Exit status 0 when everything holds (it prints what it checked), 1 when something does not (it
names every file or event that fails, the first one last), 2 when the bundle cannot be read.

What it cannot prove on its own: that the slice is the whole story. It is a slice of a longer
chain; the manifest states the chain's head at export, which the inspector compares with the
live audit trail (``pocare audit verify --chain <SITE>``, and the event at that position) or with
a signed audit-trail review. See docs/inspector-bundle.md.

This file is also POCare's module ``pocare.release.bundle_verify``; it imports nothing from POCare
so that it can travel in the bundle alone.
"""

from __future__ import annotations

import hashlib
import json
import os
import sys
import zipfile
from collections.abc import Callable
from typing import Any

BUNDLE_FORMAT = "pocare-inspector-bundle/1"
LEDGER_FORMAT = "pocare-ledger/1"
MANIFEST = "manifest.json"
MANIFEST_HASH = "manifest.sha256"
SIGNED_EVENT = "ledger.record_signed"

#: The hashed fields of an event, in the order the ledger hashes them (after the format marker).
EVENT_FIELDS = (
    "chain", "seq", "prev_hash", "event_type", "occurred_at", "actor_id", "actor_username",
    "actor_printed_name", "object_type", "object_id", "object_repr", "reason", "request_id",
    "old_values", "new_values",
)


def event_hash(fields: list[Any]) -> str:
    """SHA-256 (hex) of an event from its fields in EVENT_FIELDS order: the UTF-8 bytes of the
    compact JSON array ``["pocare-ledger/1", chain, seq, …, old_values, new_values]`` (no spaces,
    characters kept as they are, not escaped)."""
    payload = json.dumps([LEDGER_FORMAT, *fields], ensure_ascii=False, separators=(",", ":"))
    return hashlib.sha256(payload.encode("utf-8")).hexdigest()


def canonical_json(value: Any) -> str:
    """Canonical JSON text: keys sorted, no whitespace, characters kept (the ledger's rule)."""
    return json.dumps(value, ensure_ascii=False, separators=(",", ":"), sort_keys=True)


def content_hash(value: Any) -> str:
    """SHA-256 (hex) of a value's canonical JSON: what a signature binds to."""
    return hashlib.sha256(canonical_json(value).encode("utf-8")).hexdigest()


def sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


class Unreadable(Exception):
    """The bundle cannot be opened or parsed at all."""


# --- reading a bundle: a zip, or an unzipped folder ----------------------------------------------


class Bundle:
    """The files of a bundle by name (``manifest.json``, ``batch.json``, …), read as bytes."""

    def __init__(self, files: dict[str, bytes], where: str, strict: bool) -> None:
        self.files, self.where, self.strict = files, where, strict

    @classmethod
    def open(cls, path: str) -> Bundle:
        if os.path.isdir(path):
            files = {}
            for name in sorted(os.listdir(path)):
                full = os.path.join(path, name)
                if os.path.isfile(full):
                    with open(full, "rb") as fh:
                        files[name] = fh.read()
            return cls(files, path, strict=False)
        try:
            with zipfile.ZipFile(path) as zf:
                names = [n for n in zf.namelist() if not n.endswith("/")]
                manifests = [n for n in names if n.rsplit("/", 1)[-1] == MANIFEST]
                if len(manifests) != 1:
                    raise Unreadable(f"{path}: expected one {MANIFEST} in the zip, found {len(manifests)}")
                prefix = manifests[0][: -len(MANIFEST)]
                files = {}
                for n in names:
                    if not n.startswith(prefix) or "/" in n[len(prefix):]:
                        files["/" + n] = b""  # outside the bundle's folder: reported as unexpected
                        continue
                    files[n[len(prefix):]] = zf.read(n)
        except (OSError, zipfile.BadZipFile) as exc:
            raise Unreadable(f"{path}: not a readable zip file ({exc})") from exc
        return cls(files, path, strict=True)


# --- the checks ------------------------------------------------------------------------------------


class Report:
    def __init__(self, out: Callable[[str], None]) -> None:
        self.out = out
        self.failures: list[str] = []

    def ok(self, text: str) -> None:
        self.out(f"  ok    {text}")

    def fail(self, where: str, text: str) -> None:
        self.failures.append(f"{where}: {text}")
        self.out(f"  FAIL  {where}: {text}")


def _json(bundle: Bundle, name: str, report: Report) -> Any:
    try:
        return json.loads(bundle.files[name].decode("utf-8"))
    except (KeyError, UnicodeDecodeError, ValueError) as exc:
        report.fail(name, f"cannot be read as JSON ({exc.__class__.__name__})")
        return None


def _check_manifest(bundle: Bundle, report: Report) -> dict[str, Any] | None:
    if MANIFEST not in bundle.files:
        report.fail(MANIFEST, "missing")
        return None
    stated_file = bundle.files.get(MANIFEST_HASH)
    stated = (stated_file.decode("ascii", "replace").split() or ["nothing"])[0] if stated_file is not None else ""
    actual = sha256(bundle.files[MANIFEST])
    if stated_file is None:
        report.fail(MANIFEST_HASH, "missing")
    elif stated != actual:
        report.fail(MANIFEST, f"SHA-256 is {actual}, but {MANIFEST_HASH} states {stated}")
    else:
        report.ok(f"{MANIFEST} has the SHA-256 stated in {MANIFEST_HASH} ({actual})")
    manifest = _json(bundle, MANIFEST, report)
    if not isinstance(manifest, dict) or manifest.get("format") != BUNDLE_FORMAT:
        report.fail(MANIFEST, f"is not a {BUNDLE_FORMAT} manifest")
        return None
    return manifest


def _check_files(bundle: Bundle, manifest: dict[str, Any], report: Report) -> None:
    listed: dict[str, str] = {f["name"]: f["sha256"] for f in manifest.get("files", [])}
    for name, digest in listed.items():
        if name not in bundle.files:
            report.fail(name, "listed in the manifest but missing from the bundle")
            continue
        actual = sha256(bundle.files[name])
        if actual != digest:
            report.fail(name, f"SHA-256 is {actual}, the manifest states {digest} (the file was changed)")
        else:
            report.ok(f"{name}: SHA-256 as in the manifest")
    extra = sorted(set(bundle.files) - set(listed) - {MANIFEST, MANIFEST_HASH})
    for name in extra:
        if bundle.strict:
            report.fail(name.lstrip("/"), "is in the zip but not listed in the manifest")
        else:
            report.out(f"  note  {name} is in the folder but not part of the bundle (not checked)")


def _check_batch(bundle: Bundle, manifest: dict[str, Any], report: Report) -> None:
    batch = _json(bundle, "batch.json", report)
    if batch is None:
        return
    stated = manifest.get("batch_json_content_hash")
    actual = content_hash(batch)
    if actual != stated:
        report.fail("batch.json", f"content hash is {actual}, the manifest states {stated}")
    else:
        report.ok(f"batch.json: canonical content hash as in the manifest ({actual})")
    if batch.get("batch", {}).get("reference") != manifest.get("batch"):
        report.fail("batch.json", f"is about batch {batch.get('batch', {}).get('reference')!r}, "
                                  f"the manifest names {manifest.get('batch')!r}")


def _read_events(bundle: Bundle, report: Report) -> list[dict[str, Any]]:
    events: list[dict[str, Any]] = []
    data = bundle.files.get("ledger.jsonl")
    if data is None:
        return events
    for n, line in enumerate(data.decode("utf-8", "replace").splitlines(), 1):
        if not line.strip():
            continue
        try:
            event = json.loads(line)
            if not isinstance(event, dict):
                raise ValueError("not an object")
        except ValueError:
            report.fail(f"ledger.jsonl line {n}", "is not a JSON object")
            continue
        events.append(event)
    return events


def _seq(event: dict[str, Any]) -> int:
    seq = event.get("seq")
    return seq if isinstance(seq, int) else -1


def _label(event: dict[str, Any]) -> str:
    return f"{event.get('chain')}#{event.get('seq')}"


def _check_ledger(bundle: Bundle, manifest: dict[str, Any], report: Report) -> list[dict[str, Any]]:
    events = _read_events(bundle, report)
    bad = 0
    for event in events:
        missing = [f for f in (*EVENT_FIELDS, "hash") if f not in event]
        if missing:
            report.fail(f"ledger.jsonl event {_label(event)}", f"lacks {', '.join(missing)}")
            bad += 1
            continue
        if event_hash([event[f] for f in EVENT_FIELDS]) != event["hash"]:
            report.fail(f"ledger.jsonl event {_label(event)}", "content does not match its hash (edited)")
            bad += 1
    if not bad:
        report.ok(f"ledger.jsonl: {len(events)} events, each hashes to its stored hash ({LEDGER_FORMAT})")
    by_chain: dict[str, list[dict[str, Any]]] = {}
    for event in events:
        by_chain.setdefault(str(event.get("chain")), []).append(event)
    links = 0
    for rows in by_chain.values():
        rows.sort(key=_seq)
        for i in range(1, len(rows)):
            before, after = rows[i - 1], rows[i]
            if after.get("seq") == before.get("seq"):
                report.fail(f"ledger.jsonl event {_label(after)}", "appears twice")
            elif after.get("seq") == (before.get("seq") or 0) + 1:
                links += 1
                if after.get("prev_hash") != before.get("hash"):
                    report.fail(f"ledger.jsonl event {_label(after)}",
                                f"does not link to {_label(before)} (prev_hash differs from its hash)")
    report.ok(f"ledger.jsonl: {links} links between consecutive events checked in {len(by_chain)} chain(s)")
    stated = manifest.get("ledger", {})
    order = sorted(events, key=lambda e: (str(e.get("occurred_at")), str(e.get("chain")), e.get("seq") or 0))
    first, last = (_label(order[0]), _label(order[-1])) if order else (None, None)
    if (stated.get("events"), stated.get("first"), stated.get("last")) != (len(events), first, last):
        report.fail("ledger.jsonl", f"holds {len(events)} events from {first} to {last}; the manifest states "
                                    f"{stated.get('events')} from {stated.get('first')} to {stated.get('last')}")
    for chain, head in sorted((stated.get("chains") or {}).items()):
        rows = by_chain.get(chain, [])
        if head.get("events") != len(rows) or (rows and head.get("last_seq") != rows[-1].get("seq")):
            report.fail("ledger.jsonl", f"chain {chain}: the manifest states {head.get('events')} events up to "
                                        f"#{head.get('last_seq')}, the slice holds {len(rows)}")
        elif rows and head.get("head_seq", 0) < rows[-1].get("seq", 0):
            report.fail("ledger.jsonl", f"chain {chain}: event {_label(rows[-1])} lies beyond the head the "
                                        f"manifest states (#{head.get('head_seq')})")
        elif rows and head.get("head_seq") == rows[-1].get("seq") and head.get("head_hash") != rows[-1].get("hash"):
            report.fail("ledger.jsonl", f"chain {chain}: the last event is the head, but its hash differs from "
                                        "the head hash the manifest states")
    return events


def _check_signatures(bundle: Bundle, events: list[dict[str, Any]], report: Report) -> None:
    signatures = _json(bundle, "signatures.json", report)
    if signatures is None:
        return
    rows = signatures.get("signatures", []) if isinstance(signatures, dict) else []
    signed: dict[str, dict[str, Any]] = {}
    for event in events:
        if event.get("event_type") == SIGNED_EVENT:
            signed[_label(event)] = event
    checked = bound = 0
    for sig in rows:
        where = f"signatures.json signature {sig.get('id')} ({sig.get('event')})"
        signing = signed.get(str(sig.get("event")))
        if signing is None:
            report.fail(where, "has no ledger.record_signed event in ledger.jsonl")
            continue
        try:
            new = json.loads(signing["new_values"])
        except (KeyError, TypeError, ValueError):
            report.fail(where, "its signing event's new_values cannot be read")
            continue
        expected = (sig.get("record_type"), str(sig.get("record_id")), sig.get("record_hash"), sig.get("meaning"),
                    sig.get("signer_id"))
        found = (signing.get("object_type"), str(signing.get("object_id")), new.get("record_hash"), new.get("meaning"),
                 signing.get("actor_id"))
        if expected != found:
            report.fail(where, f"differs from its signing event {_label(signing)} (record, record hash, meaning "
                               "or signer)")
            continue
        checked += 1
        if sig.get("valid_now"):
            if content_hash(sig.get("signed_content")) != sig.get("record_hash"):
                report.fail(where, "is listed as valid, but the signed content listed does not hash to the "
                                   "record hash")
                continue
            bound += 1
    report.ok(f"signatures.json: {checked} of {len(rows)} signatures found in their ledger.record_signed events "
              f"with the same record hash; {bound} listed as valid re-hash from their signed content")


def verify(path: str, out: Callable[[str], None] = print) -> int:
    """Check the bundle at ``path`` (a zip or a folder); 0 when intact, 1 when not, 2 when unreadable."""
    try:
        bundle = Bundle.open(path)
    except Unreadable as exc:
        out(f"CANNOT READ: {exc}")
        return 2
    report = Report(out)
    out(f"POCare inspector bundle: {bundle.where}")
    manifest = _check_manifest(bundle, report)
    if manifest is None:
        out(f"NOT INTACT: first failure: {report.failures[0]}")
        return 1
    out(f"  batch {manifest.get('batch')} at {manifest.get('site')}, exported {manifest.get('exported_at')} by "
        f"{(manifest.get('exported_by') or {}).get('printed_name')} (POCare {manifest.get('pocare_version')})")
    _check_files(bundle, manifest, report)
    _check_batch(bundle, manifest, report)
    events = _check_ledger(bundle, manifest, report)
    _check_signatures(bundle, events, report)
    if report.failures:
        out(f"NOT INTACT: {len(report.failures)} problem(s); first failure: {report.failures[0]}")
        return 1
    for chain, head in sorted((manifest.get("ledger", {}).get("chains") or {}).items()):
        out(f"  chain {chain}: head at export #{head.get('head_seq')} {head.get('head_hash')} — compare with the "
            "live audit trail (pocare audit verify, then the event at that position) or a signed review")
    out("INTACT: the files are as exported and every event is as hashed.")
    return 0


def main(argv: list[str]) -> int:
    if len(argv) > 2 or (len(argv) == 2 and argv[1] in ("-h", "--help")):
        print(__doc__)
        return 2
    path = argv[1] if len(argv) == 2 else os.path.dirname(os.path.abspath(argv[0]))
    return verify(path)


if __name__ == "__main__":
    sys.exit(main(sys.argv))
