"""The inspector bundle: one zip per batch with the record as JSON and PDF, its signatures with the
signers' training then, its slice of the audit trail, a manifest of hashes and a verification
script that runs on the standard library alone — and catches tampering."""

from __future__ import annotations

import datetime as dt
import hashlib
import io
import json
import subprocess
import sys
import zipfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from django.urls import include, path

import pocare.urls
from pocare.ledger import canonical
from pocare.ledger.models import Event, Signature
from pocare.manufacturing import services
from pocare.manufacturing.models import Batch, StepValue
from pocare.release import bundle_verify
from pocare.release.bundle import bundle_export
from pocare.release.bundle_views import bundle_api_urlpatterns, bundle_urlpatterns
from pocare.release.events import ReleaseEvent
from tests.manufacturing import helpers as h
from tests.worlds import built_once, clock_as_built, clock_at_build

# The bundle's own paths first, then the project's (which include them once the release app's URL
# modules do): the tests run the same before and after.
urlpatterns = [*bundle_urlpatterns, path("api/", include(bundle_api_urlpatterns)), *pocare.urls.urlpatterns]
pytestmark = [pytest.mark.django_db, pytest.mark.urls(__name__)]

PARTS = {"manifest.json", "manifest.sha256", "batch.json", "signatures.json", "ledger.jsonl", "dossier.pdf",
         "verify_bundle.py"}


def _batch_with_history() -> Batch:
    """A batch at MAD with executed steps (one value out of range, so a deviation), a corrected
    value and a QC result — all through the services."""
    batch = h.started_batch("MAD")
    while services.next_step(batch)[1]["id"] != "apheresis-count":
        h.do_step(batch)
    h.do_step(batch, values={"cd3-fraction": 5})  # non-critical, out of range: opens a deviation
    original = StepValue.objects.get(step__batch=batch, step__step_id="apheresis-count", parameter_id="tnc",
                                     corrects=None)
    services.value_correct(actor=h.user("operator.mad"), value=original, new_value="4200",
                           reason="Transcription error: counter printout says 4200",
                           credentials=h.creds("operator.mad"))
    qc = h.user("qc.mad")
    services.qc_result_record(actor=qc, batch=batch, attribute_id="viability", value="96.5", credentials=h.creds(qc))
    return batch


@pytest.fixture(scope="module")
def _world(django_db_setup: Any, django_db_blocker: Any) -> Iterator[tuple[int, Any, dt.datetime]]:
    """The batch and its bundle, made once for the module: these tests read the export and the
    records it came from, and change only copies of its bytes (tests/worlds.py). The tests that ask
    for bundles themselves are in test_bundle_access.py, each on a batch of its own."""
    def build() -> tuple[int, Any, dt.datetime]:
        batch = _batch_with_history()
        exported = bundle_export(actor=h.user("inspector"), batch=batch)
        return batch.pk, exported, clock_at_build()

    with built_once(django_db_blocker, build) as world:
        yield world


@pytest.fixture
def batch(_world: tuple[int, Any, dt.datetime]) -> Batch:
    pk, _, at = _world
    clock_as_built(at)
    return Batch.objects.get(pk=pk)


@pytest.fixture
def exported(_world: tuple[int, Any, dt.datetime]) -> Any:
    clock_as_built(_world[2])
    return _world[1]


def _members(content: bytes) -> dict[str, bytes]:
    with zipfile.ZipFile(io.BytesIO(content)) as zf:
        return {n.split("/", 1)[1]: zf.read(n) for n in zf.namelist()}


def _rezip(content: bytes, change: dict[str, bytes | None]) -> bytes:
    """The bundle with members replaced (bytes) or removed (None), folder and order kept."""
    out = io.BytesIO()
    with zipfile.ZipFile(io.BytesIO(content)) as src, zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as dst:
        for info in src.infolist():
            name = info.filename.split("/", 1)[1]
            if name in change:
                if change[name] is not None:
                    dst.writestr(info, change[name])
            else:
                dst.writestr(info, src.read(info))
    return out.getvalue()


def _rehash_manifest(content: bytes, files: dict[str, bytes]) -> dict[str, bytes]:
    """What a careful forger does: restate the changed files' hashes in the manifest and re-hash it."""
    manifest = json.loads(_members(content)["manifest.json"])
    for entry in manifest["files"]:
        if entry["name"] in files:
            entry["sha256"] = hashlib.sha256(files[entry["name"]]).hexdigest()
            entry["bytes"] = len(files[entry["name"]])
    body = json.dumps(manifest, ensure_ascii=False, indent=1).encode("utf-8") + b"\n"
    return {**files, "manifest.json": body,
            "manifest.sha256": f"{hashlib.sha256(body).hexdigest()}  manifest.json\n".encode()}


def _run_script(tmp_path: Path, content: bytes, *args: str) -> subprocess.CompletedProcess[str]:
    """Run the bundle's own verify_bundle.py, isolated (-I) and without site-packages (-S): only the
    standard library is there to import."""
    (tmp_path / "bundle.zip").write_bytes(content)
    script = tmp_path / "verify_bundle.py"
    script.write_bytes(_members(content)["verify_bundle.py"])
    return subprocess.run([sys.executable, "-I", "-S", str(script), *(args or ("bundle.zip",))], cwd=tmp_path,
                          capture_output=True, text=True, timeout=60, check=False)


# --- what a bundle holds ---------------------------------------------------------------------------


def test_the_bundle_holds_every_part_of_the_batch_record(batch, exported):
    """P11-10b ATMP-TRACE: one zip with the record as JSON and PDF, signatures, the ledger slice, a
    manifest of hashes and the script; steps with corrections, materials, QC, deviations, custody."""
    files = _members(exported.content)
    assert set(files) == PARTS
    assert files["dossier.pdf"].startswith(b"%PDF")
    assert hashlib.sha256(exported.content).hexdigest() == exported.sha256
    assert hashlib.sha256(files["manifest.json"]).hexdigest() == exported.manifest_sha256
    assert files["manifest.sha256"].decode().split()[0] == exported.manifest_sha256

    manifest = json.loads(files["manifest.json"])
    assert manifest["batch"] == batch.reference and manifest["site"] == "MAD"
    assert manifest["exported_by"]["username"] == "inspector" and manifest["exported_at"].endswith("Z")
    assert {f["name"]: f["sha256"] for f in manifest["files"]} == {
        n: hashlib.sha256(files[n]).hexdigest() for n in PARTS - {"manifest.json", "manifest.sha256"}}

    data = json.loads(files["batch.json"])
    assert manifest["batch_json_content_hash"] == canonical.content_hash(data)
    assert data["order"]["coi"] == batch.order.coi
    assert [c["din"] for c in data["collections"] if c["used_by_this_batch"]] == [batch.collection.din]
    count = next(s for s in data["steps"] if s["step_id"] == "apheresis-count")
    tnc = [v for v in count["values"] if v["parameter_id"] == "tnc"]
    assert len(tnc) == 2 and tnc[1]["corrects"] == tnc[0]["id"] and tnc[1]["value"] == 4200
    assert tnc[1]["correction_reason"].startswith("Transcription error")
    assert any(m["lot"]["lot_number"] for s in data["steps"] for m in s.get("materials", []))
    assert [q["attribute_id"] for q in data["qc"]["results"]] == ["viability"]
    assert any(d["kind"] == "process" and d["step_id"] == "apheresis-count" for d in data["deviations"])
    kinds = [x["kind"] for x in data["custody"]["handoffs"]]
    assert kinds[:4] == ["collection", "dispatch_to_site", "receipt_at_site", "manufacture_start"]
    assert set(data["release"]) == {"exception_reviews", "qc_reviews", "certification", "oos_releases"}


def test_derived_values_say_what_record_they_were_read_from(batch, exported):
    """ALCOA+ (issue 15, one fact, one value): a value read from the record, not typed, says so in
    batch.json and in the dossier the inspector reads, with the record it came from."""
    from pocare.masterfile.schema import DERIVATIONS
    from tests.pdf_reading import keep, opened

    files = _members(exported.content)
    keep("bundle-dossier.pdf", files["dossier.pdf"])
    data = json.loads(files["batch.json"])
    derived = [v for s in data["steps"] for v in s.get("values", []) if v["derived_from"]]
    typed = [v for s in data["steps"] for v in s.get("values", []) if not v["derived_from"]]
    assert derived and typed
    assert {v["derived_from"] for v in derived} <= {d.reads for d in DERIVATIONS.values()}
    with opened(files["dossier.pdf"]) as pdf:
        text = " ".join((page.extract_text() or "") for page in pdf.pages)
    assert text.count("From the record, not typed") >= len(derived)


def test_signatures_carry_the_signers_training_at_the_moment_of_signing(batch, exported):
    """P11-50 P11-70 P11-10i: every signature of the batch's records, with printed name, meaning,
    time, the record hash it binds to, whether it holds now, and the training gate's decision then."""
    listed = json.loads(_members(exported.content)["signatures.json"])["signatures"]
    step_ids = [str(i) for i in batch.steps.values_list("pk", flat=True)]
    in_db = Signature.objects.filter(record_type="manufacturing.StepExecution", record_id__in=step_ids)
    steps = [s for s in listed if s["record_type"] == "manufacturing.StepExecution"]
    assert {s["id"] for s in steps} == set(in_db.values_list("pk", flat=True))
    assert all(s["valid_now"] and s["printed_name"] and s["meaning"] and s["signed_at"] for s in listed)
    for s in steps:
        gate = s["training_at_signing"]
        assert gate["kind"] == "step_gate" and gate["allowed"] is True and gate["reasons"] == []
        assert gate["verifying"] == (s["meaning"] == "verified")
    others = [s for s in listed if s["record_type"] != "manufacturing.StepExecution"]
    assert {"manufacturing.Batch", "manufacturing.StepValue", "manufacturing.QcResult"} <= {
        s["record_type"] for s in others}
    qc = next(s for s in others if s["record_type"] == "manufacturing.QcResult")
    assert {"role": "qc_analyst", "role_name": "QC analyst", "site": "MAD"} in qc["training_at_signing"]["roles"]


def test_the_ledger_slice_holds_the_batchs_events_with_every_hashed_field(batch, exported):
    """P11-10b A11-12: every event whose object is a record of the batch, as hashed, in the bundle;
    the manifest names the first and last and the site chain's head at export."""
    files = _members(exported.content)
    events = [json.loads(line) for line in files["ledger.jsonl"].decode().splitlines()]
    labels = {e["label"] for e in events}
    for expected in Event.objects.filter(object_type="manufacturing.StepValue",
                                         object_id__in=[str(v.pk) for v in StepValue.objects.filter(step__batch=batch)]):
        assert expected.label in labels
    assert any(e["event_type"] == "ledger.record_signed" for e in events)
    assert any(e["event_type"] == "quality.deviation_opened" for e in events)
    manifest = json.loads(files["manifest.json"])
    assert (manifest["ledger"]["first"], manifest["ledger"]["last"]) == (events[0]["label"], events[-1]["label"])
    head = manifest["ledger"]["site_chain_head"]
    assert Event.objects.get(chain="MAD", seq=head["seq"]).hash == head["hash"]


def test_the_export_is_itself_a_ledger_event_with_the_manifest_hash(batch, exported):
    """P11-10b A11-9: exporting is recorded on the batch's site chain, with the manifest's SHA-256
    (so a copy shown later can be matched to the audit trail)."""
    event = Event.objects.get(event_type=ReleaseEvent.BUNDLE_EXPORTED)
    assert event.chain == "MAD" and event.label == exported.event_label
    assert event.object_type == "manufacturing.Batch" and event.object_id == str(batch.pk)
    assert event.actor_username == "inspector"
    assert event.new["manifest_sha256"] == exported.manifest_sha256 and event.new["sha256"] == exported.sha256
    head = json.loads(_members(exported.content)["manifest.json"])["ledger"]["site_chain_head"]
    assert event.seq > head["seq"]  # the export comes after the head it states


# --- the script ------------------------------------------------------------------------------------


def test_the_script_passes_an_untouched_bundle_with_the_standard_library_alone(tmp_path, exported):
    """P11-10b: an inspector checks the bundle offline, without POCare (python -I -S)."""
    run = _run_script(tmp_path, exported.content)
    assert run.returncode == 0, run.stdout + run.stderr
    assert "INTACT" in run.stdout and "FAIL" not in run.stdout
    assert "batch.json: SHA-256 as in the manifest" in run.stdout
    assert "each hashes to its stored hash" in run.stdout


def test_the_script_passes_the_unzipped_folder_too(tmp_path, exported):
    """P11-10b: run from the unzipped folder, with no argument."""
    with zipfile.ZipFile(io.BytesIO(exported.content)) as zf:
        zf.extractall(tmp_path)
    folder = next(p for p in tmp_path.iterdir() if p.is_dir())
    run = subprocess.run([sys.executable, "-I", "-S", "verify_bundle.py"], cwd=folder, capture_output=True,
                         text=True, timeout=60, check=False)
    assert run.returncode == 0, run.stdout + run.stderr


def test_editing_batch_json_is_caught_and_named(tmp_path, exported):
    """P11-10b P11-70: a value changed in batch.json no longer matches the manifest."""
    files = _members(exported.content)
    data = json.loads(files["batch.json"])
    value = next(v for s in data["steps"] for v in s.get("values", []) if v["parameter_id"] == "tnc")
    value["value"] = 9999
    forged = json.dumps(data, ensure_ascii=False, indent=1).encode() + b"\n"
    run = _run_script(tmp_path, _rezip(exported.content, {"batch.json": forged}))
    assert run.returncode == 1
    assert "FAIL  batch.json: SHA-256" in run.stdout and "first failure: batch.json" in run.stdout

    # Restating its hash in a re-hashed manifest does not help: its content hash is stated too.
    run = _run_script(tmp_path, _rezip(exported.content, _rehash_manifest(exported.content, {"batch.json": forged})))
    assert run.returncode == 1 and "FAIL  batch.json: content hash" in run.stdout


def test_editing_an_event_is_caught_by_its_hash_even_with_a_consistent_manifest(tmp_path, exported):
    """P11-70 A11-9: an event edited in ledger.jsonl, with the manifest re-hashed to match, still
    fails: the event no longer hashes to its stored hash."""
    lines = _members(exported.content)["ledger.jsonl"].decode().splitlines()
    n = next(i for i, line in enumerate(lines) if '"manufacturing.value_corrected"' in line)
    event = json.loads(lines[n])
    event["reason"] = "Nothing to see here"
    lines[n] = json.dumps(event, ensure_ascii=False)
    forged = ("\n".join(lines) + "\n").encode()
    run = _run_script(tmp_path, _rezip(exported.content, _rehash_manifest(exported.content, {"ledger.jsonl": forged})))
    assert run.returncode == 1
    assert "ledger.jsonl: SHA-256 as in the manifest" in run.stdout  # the forger was careful …
    assert f"FAIL  ledger.jsonl event {event['label']}: content does not match its hash" in run.stdout  # … in vain


def test_a_removed_file_and_a_removed_event_are_caught(tmp_path, exported):
    """P11-10b: a bundle with a file missing, or an event taken out of the slice, is not intact."""
    run = _run_script(tmp_path, _rezip(exported.content, {"signatures.json": None}))
    assert run.returncode == 1 and "signatures.json: listed in the manifest but missing" in run.stdout

    lines = _members(exported.content)["ledger.jsonl"].decode().splitlines()
    signing = next(i for i, line in enumerate(lines) if '"ledger.record_signed"' in line)
    forged = ("\n".join(lines[:signing] + lines[signing + 1:]) + "\n").encode()
    run = _run_script(tmp_path, _rezip(exported.content, _rehash_manifest(exported.content, {"ledger.jsonl": forged})))
    assert run.returncode == 1
    assert "has no ledger.record_signed event" in run.stdout


def test_the_scripts_canonical_rule_agrees_with_the_ledgers(batch, exported):
    """P11-70: the script's stand-alone hash rule is the ledger's (canonical.event_hash), on real
    events, and its canonical content hash is the one signatures bind to."""
    events = list(Event.objects.filter(chain="MAD").order_by("seq"))
    assert len(events) > 20
    for event in events:
        fields = list(event.hashed_fields())
        assert bundle_verify.event_hash(fields) == canonical.event_hash(fields) == event.hash
    assert bundle_verify.EVENT_FIELDS == canonical.EVENT_FIELDS
    assert bundle_verify.LEDGER_FORMAT == canonical.FORMAT
    content = {"b": [1, 2.5, "ü"], "a": {"z": None, "y": True}}
    assert bundle_verify.content_hash(content) == canonical.content_hash(content)
    for s in json.loads(_members(exported.content)["signatures.json"])["signatures"]:
        assert bundle_verify.content_hash(s["signed_content"]) == s["record_hash"]


def test_a_signature_moved_to_other_content_is_caught(tmp_path, exported):
    """P11-70: a signature listed with another record hash (or other signed content) than its
    signing event carries does not pass, even with the manifest re-hashed."""
    data = json.loads(_members(exported.content)["signatures.json"])
    data["signatures"][0]["signed_content"]["reference"] = "SOMETHING-ELSE"
    forged = json.dumps(data, ensure_ascii=False, indent=1).encode() + b"\n"
    run = _run_script(tmp_path, _rezip(exported.content,
                                       _rehash_manifest(exported.content, {"signatures.json": forged})))
    assert run.returncode == 1 and "the signed content listed does not hash to the record hash" in run.stdout
    data["signatures"][0]["record_hash"] = "0" * 64
    forged = json.dumps(data, ensure_ascii=False, indent=1).encode() + b"\n"
    run = _run_script(tmp_path, _rezip(exported.content,
                                       _rehash_manifest(exported.content, {"signatures.json": forged})))
    assert run.returncode == 1 and "differs from its signing event" in run.stdout
