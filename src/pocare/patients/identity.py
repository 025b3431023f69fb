"""A patient's identifying data, encrypted at rest with keys kept outside the database (PAT-PRIVACY).

The data (name, date of birth, contact, address) are one JSON object sealed with Fernet
(AES-128-CBC with HMAC-SHA256, from ``cryptography``) under the first key of the key file
``settings.POCARE_PATIENT_KEYS``; every key of the file opens (so a key can be rotated in: add a new
first key, re-seal, retire the old). A database dump, a backup or a replica alone holds no name.

Outside production the file is made on first use (mode 0600, beside the embedded database); in
production a missing file is an error, because a key made silently on one server would seal data that
the next server cannot open.
"""

from __future__ import annotations

import contextlib
import json
import os
import secrets
from dataclasses import asdict, dataclass
from functools import cache
from pathlib import Path

from cryptography.fernet import Fernet, InvalidToken, MultiFernet
from django.conf import settings
from django.core.exceptions import ImproperlyConfigured


@dataclass(frozen=True)
class Identity:
    """What identifies a patient. Only the treating hospital's physician and navigator see it."""

    name: str
    birth_date: str = ""  # ISO 8601 date
    contact: str = ""  # telephone or e-mail
    address: str = ""


@dataclass(frozen=True)
class _Keys:
    current_id: str
    fernet: MultiFernet


def _key_file() -> Path:
    return Path(settings.POCARE_PATIENT_KEYS)


def keys_init(path: Path) -> str:
    """Write a key file with one new key at ``path`` (mode 0600) and return the key's id."""
    path.parent.mkdir(parents=True, exist_ok=True)
    key_id = secrets.token_hex(4)
    body = json.dumps({"keys": [{"id": key_id, "key": Fernet.generate_key().decode()}]}, indent=2)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as out:
        out.write(body + "\n")
    return key_id


@cache
def _keys(path: Path) -> _Keys:
    if not path.exists():
        if settings.PRODUCTION:
            raise ImproperlyConfigured(f"POCARE_PATIENT_KEYS: no key file at {path} (docs/patients.md, 'Privacy').")
        with contextlib.suppress(FileExistsError):  # another process made it first
            keys_init(path)
    try:
        entries = json.loads(path.read_text())["keys"]
        fernets = [Fernet(entry["key"].encode()) for entry in entries]
        current = str(entries[0]["id"])
    except (OSError, ValueError, KeyError, IndexError, TypeError) as exc:
        raise ImproperlyConfigured(f"POCARE_PATIENT_KEYS: {path} is not a key file ({exc}).") from exc
    return _Keys(current, MultiFernet(fernets))


def current_key_id() -> str:
    return _keys(_key_file()).current_id


def seal(identity: Identity) -> tuple[bytes, str]:
    """The sealed identity and the id of the key that sealed it."""
    keys = _keys(_key_file())
    plain = json.dumps(asdict(identity), sort_keys=True, ensure_ascii=False).encode()
    return keys.fernet.encrypt(plain), keys.current_id


class IdentityUnreadable(Exception):
    """The sealed data cannot be opened with the keys this server holds."""


def unseal(token: bytes | memoryview) -> Identity:
    """The identity sealed in ``token``; :class:`IdentityUnreadable` when no key of the file opens it."""
    try:
        plain = _keys(_key_file()).fernet.decrypt(bytes(token))
    except InvalidToken as exc:
        raise IdentityUnreadable("No key of POCARE_PATIENT_KEYS opens this patient's identifying data.") from exc
    return Identity(**json.loads(plain))


def keys_forget() -> None:
    """Forget the keys read so far (after a rotation, and in tests that change the key file)."""
    _keys.cache_clear()


def _write_private(path: Path, entries: list[dict[str, str]]) -> None:
    """Replace the key file with ``entries`` at once (a temporary file renamed over it, mode 0600):
    a server reading it meanwhile sees the old file or the new one, never half of one."""
    tmp = path.with_name(f".{path.name}.{secrets.token_hex(4)}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as out:
        out.write(json.dumps({"keys": entries}, indent=2) + "\n")
    os.replace(tmp, path)


def keys_add_first(path: Path) -> str:
    """Put a new key first in the key file at ``path`` (it seals from now on; the others still open)
    and return its id. The caller re-seals what the older keys sealed (``patient_keys_rotate``)."""
    entries = json.loads(path.read_text())["keys"]
    key_id = secrets.token_hex(4)
    while key_id in {str(e["id"]) for e in entries}:
        key_id = secrets.token_hex(4)
    _write_private(path, [{"id": key_id, "key": Fernet.generate_key().decode()}, *entries])
    keys_forget()
    return key_id


def keys_retire(path: Path, *, keep: set[str]) -> list[str]:
    """Drop from the key file every key but the first and those in ``keep`` (still sealing some
    identity); return the ids dropped."""
    entries = json.loads(path.read_text())["keys"]
    kept = [e for i, e in enumerate(entries) if i == 0 or str(e["id"]) in keep]
    dropped = [str(e["id"]) for e in entries if e not in kept]
    if dropped:
        _write_private(path, kept)
        keys_forget()
    return dropped


def key_ids() -> list[str]:
    """The ids of the keys in the key file, the sealing one first."""
    return [str(e["id"]) for e in json.loads(_key_file().read_text())["keys"]] if _key_file().exists() else []


def reseal(token: bytes | memoryview) -> bytes:
    """``token`` opened with whichever key of the file opens it and sealed again under the first."""
    try:
        return _keys(_key_file()).fernet.rotate(bytes(token))
    except InvalidToken as exc:
        raise IdentityUnreadable("No key of POCARE_PATIENT_KEYS opens this patient's identifying data.") from exc
