"""Every planning command shown to users — the code blocks of docs/planning.md and the planning rows
of the README's command table — runs as written. The demo network is loaded for ``--network`` and
``--live``; ``POCARE_PLANNING_SMALL=1`` (documented in docs/planning.md) caps the sizes so that the
examples take seconds; the example's words are not changed."""

from __future__ import annotations

import datetime as dt
import io
import re
import shlex
import time
from pathlib import Path

import pytest
from django.core.management import call_command

from pocare.demo import masterfile as masterfile_demo
from pocare.demo import network as network_demo
from pocare.demo.history import load_history
from pocare.planning import study
from tests.conftest import PASSWORD

ROOT = Path(__file__).resolve().parents[2]
PLANNING_COMMANDS = ("plan", "twin")


def documented_examples() -> list[str]:
    """``pocare plan …`` and ``pocare twin …`` lines of docs/planning.md's fenced blocks and of the
    README (in its table, between backticks)."""
    docs = (ROOT / "docs/planning.md").read_text(encoding="utf-8")
    lines = [line.strip() for block in re.findall(r"```[^\n]*\n(.*?)```", docs, flags=re.S)
             for line in block.splitlines()]
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    lines += re.findall(r"`(pocare (?:plan|twin)[^`]*)`", readme)
    return [line for line in lines if line.split()[:1] == ["pocare"] and line.split()[1] in PLANNING_COMMANDS]


def test_the_documents_show_examples_of_both_commands():
    examples = documented_examples()
    assert {e.split()[1] for e in examples} == set(PLANNING_COMMANDS)
    assert len(examples) >= 8
    assert any("--network" in e for e in examples) and any("--live" in e for e in examples)


def run_example(example: str, folder: Path) -> tuple[str, str, float]:
    """Run one example in ``folder`` (where ``docs/`` leads to the repository's); its output, its
    report and its seconds."""
    name, *args = shlex.split(example)[1:]
    out = io.StringIO()
    began = time.perf_counter()
    call_command(name, *args, stdout=out)
    seconds = time.perf_counter() - began
    return out.getvalue(), (folder / args[args.index("--out") + 1]).read_text(encoding="utf-8"), seconds


@pytest.fixture
def folder(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "docs").symlink_to(ROOT / "docs")
    monkeypatch.setenv(study.SMALL_RUN_ENV, "1")
    return tmp_path


def needs_network(example: str) -> bool:
    return "--network" in example or "--live" in example


@pytest.mark.parametrize("example", [e for e in documented_examples() if not needs_network(e)])
def test_documented_example_runs_as_written(example, folder):
    out, report, seconds = run_example(example, folder)
    assert "<svg" in report and "Small run" in out and "Report:" in out
    assert seconds < 60, f"{example} took {seconds:.0f} s"


@pytest.mark.django_db
def test_documented_examples_of_the_live_network_run_as_written(people, folder):
    """One demo network (sites, units, three months of batches and orders) for every example that
    reads it, run one after the other."""
    version = masterfile_demo.load_product_and_v1(password=PASSWORD)
    network_demo.load(password=PASSWORD, product=version.product)
    load_history(months=3, now=dt.datetime.now(dt.UTC) - dt.timedelta(days=1))
    examples = [e for e in documented_examples() if needs_network(e)]
    assert examples
    for example in examples:
        out, report, seconds = run_example(example, folder)
        assert "<svg" in report and "Report:" in out, example
        assert seconds < 60, f"{example} took {seconds:.0f} s"
