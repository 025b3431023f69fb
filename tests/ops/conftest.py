from __future__ import annotations

from pathlib import Path

import pytest


@pytest.fixture(autouse=True)
def _no_installation_digests(tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch) -> None:
    """The `audit verify --digests` that restore runs as a process reads the digest store and key of
    its environment; point them at an empty place, so that a developer's own `var/digests` never
    judges the suite's archives (tests that anchor set their own)."""
    nowhere = Path(tmp_path_factory.mktemp("no-digests"))
    monkeypatch.setenv("POCARE_ANCHOR_KEY", str(nowhere / "ed25519.pem"))
    monkeypatch.setenv("POCARE_ANCHOR_TRUSTED_KEYS", str(nowhere / "ed25519.pem.pub"))
    monkeypatch.setenv("POCARE_DIGEST_DIR", str(nowhere / "digests"))
