"""What several servers share, shown between real processes (docs/operations.md, "Several servers"):
a value cached by one process is read by another (the database's cache by default, Redis when
``POCARE_CACHE_URL`` names one), and a file saved by one is opened by another (a directory by
default, S3-compatible object storage with ``POCARE_STORAGE=s3``: here a local S3 server, moto's,
spoken to by boto3 through django-storages as production would be). The settings refuse what they
cannot use, naming the variable and never echoing a URL that may hold a password.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import boto3
import pytest

from tests.ops.processes import SRC, database_url, free_port

SETUP = "import django; django.setup()\n"


def _python(code: str, env: dict[str, str]) -> str:
    """Run ``code`` in a new process with POCare's settings read from ``env``; its standard output."""
    done = subprocess.run([sys.executable, "-c", SETUP + code], capture_output=True, text=True, timeout=120,
                          env={"PATH": os.environ["PATH"], "PYTHONPATH": SRC, "DJANGO_SETTINGS_MODULE": "pocare.settings",
                               **env})
    assert done.returncode == 0, done.stderr[-3000:]
    return done.stdout.strip()


def _wait_for_port(port: int, process: subprocess.Popen[bytes]) -> None:
    deadline = time.monotonic() + 30
    while True:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=1):
                return
        except OSError:
            if process.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError("the server did not start") from None
            time.sleep(0.1)


@pytest.fixture
def redis_url(tmp_path: Path) -> Iterator[str]:
    """A Redis server of the test's own, on a free port, keeping nothing on disk."""
    server = shutil.which("redis-server")
    if server is None:
        pytest.skip("redis-server is not installed (apt-get install redis-server)")
    port = free_port()
    process = subprocess.Popen([server, "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no",
                                "--dir", str(tmp_path)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        _wait_for_port(port, process)
        yield f"redis://127.0.0.1:{port}/0"
    finally:
        process.terminate()
        process.wait(timeout=10)


@pytest.fixture
def s3_endpoint(tmp_path: Path) -> Iterator[dict[str, str]]:
    """A local S3 server (moto's, over HTTP) with a bucket, and the environment that points POCare at it."""
    server = Path(sys.executable).parent / "moto_server"
    if not server.exists():
        pytest.skip("moto[server] is not installed (dev dependencies)")
    port = free_port()
    process = subprocess.Popen([str(server), "-H", "127.0.0.1", "-p", str(port)], stdout=subprocess.DEVNULL,
                               stderr=subprocess.DEVNULL, cwd=tmp_path)
    env = {"POCARE_STORAGE": "s3", "POCARE_S3_BUCKET": "pocare-files", "POCARE_S3_ENDPOINT_URL": f"http://127.0.0.1:{port}",
           "POCARE_S3_REGION": "eu-west-1", "AWS_ACCESS_KEY_ID": "test-key", "AWS_SECRET_ACCESS_KEY": "test-secret"}
    try:
        _wait_for_port(port, process)
        boto3.client("s3", endpoint_url=env["POCARE_S3_ENDPOINT_URL"], region_name="eu-west-1",
                     aws_access_key_id="test-key", aws_secret_access_key="test-secret").create_bucket(
            Bucket="pocare-files", CreateBucketConfiguration={"LocationConstraint": "eu-west-1"})
        yield env
    finally:
        process.terminate()
        process.wait(timeout=10)


def _base_env(tmp_path: Path, name: str) -> dict[str, str]:
    """A process with a local directory of its own (its ``var``), which the other never sees."""
    return {"POCARE_VAR_DIR": str(tmp_path / name), "HOME": str(tmp_path / name), "DATABASE_URL": database_url()}


def test_a_value_cached_by_one_process_is_read_by_another_in_the_database_cache(tx_db, tmp_path):
    """The default cache is the database's, whose table `pocare migrate` made: shared by every server."""
    put = "from django.core.cache import cache; cache.set('pocare-test-shared', 'from process one', 60); print('ok')"
    assert _python(put, _base_env(tmp_path, "one")) == "ok"
    get = ("from django.conf import settings; from django.core.cache import cache; "
           "print(settings.CACHES['default']['BACKEND'].rsplit('.', 1)[-1], cache.get('pocare-test-shared'))")
    assert _python(get, _base_env(tmp_path, "two")) == "DatabaseCache from process one"


def test_a_value_cached_by_one_process_is_read_by_another_through_redis(redis_url, tmp_path):
    env = {"POCARE_CACHE_URL": redis_url}
    put = "from django.core.cache import cache; cache.set('shared', {'n': 42}, 60); print('ok')"
    assert _python(put, {**_base_env(tmp_path, "one"), **env}) == "ok"
    get = ("from django.conf import settings; from django.core.cache import cache; "
           "print(settings.CACHES['default']['BACKEND'].rsplit('.', 1)[-1], cache.get('shared'))")
    assert _python(get, {**_base_env(tmp_path, "two"), **env}) == "RedisCache {'n': 42}"


SAVE = ("from django.core.files.base import ContentFile; from django.core.files.storage import storages; "
        "s = storages['default']; print(s.save('bundles/MAD-2026-0001.pdf', ContentFile(b'%PDF-1.7 bundle')))")
READ = ("from django.core.files.storage import storages; s = storages['default']; "
        "f = s.open({name!r}, 'rb'); print(type(s).__name__, f.read().decode()); f.close()")


def test_a_file_saved_by_one_process_is_opened_by_another_from_the_shared_directory(tmp_path):
    env = {"DATABASE_URL": f"sqlite:///{tmp_path / 'unused.sqlite3'}", "POCARE_FILES_DIR": str(tmp_path / "shared")}
    name = _python(SAVE, {**_base_env(tmp_path, "one"), **env})
    assert name == "bundles/MAD-2026-0001.pdf"
    assert _python(READ.format(name=name), {**_base_env(tmp_path, "two"), **env}) == "FileSystemStorage %PDF-1.7 bundle"
    assert oct((tmp_path / "shared" / name).stat().st_mode & 0o777) == "0o640"
    second = _python(SAVE, {**_base_env(tmp_path, "two"), **env})
    assert second != name and second.startswith("bundles/MAD-2026-0001_")  # never overwritten


def test_a_file_saved_by_one_process_is_opened_by_another_from_object_storage(s3_endpoint, tmp_path):
    """POCARE_STORAGE=s3: django-storages and boto3 against a local S3 server; no overwrite either."""
    env = {"DATABASE_URL": f"sqlite:///{tmp_path / 'unused.sqlite3'}", **s3_endpoint}
    name = _python(SAVE, {**_base_env(tmp_path, "one"), **env})
    assert name == "bundles/MAD-2026-0001.pdf"
    assert _python(READ.format(name=name), {**_base_env(tmp_path, "two"), **env}) == "S3Storage %PDF-1.7 bundle"
    second = _python(SAVE, {**_base_env(tmp_path, "two"), **env})
    assert second != name
    listed = boto3.client("s3", endpoint_url=s3_endpoint["POCARE_S3_ENDPOINT_URL"], region_name="eu-west-1",
                          aws_access_key_id="test-key", aws_secret_access_key="test-secret").list_objects_v2(
        Bucket="pocare-files")
    assert sorted(o["Key"] for o in listed["Contents"]) == sorted([f"files/{name}", f"files/{second}"])


@pytest.mark.parametrize(("env", "named", "secret"), [
    ({"POCARE_CACHE_URL": "memcached://pocare:hunter2@cache.example:11211"}, "POCARE_CACHE_URL", "hunter2"),
    ({"POCARE_STORAGE": "nfs"}, "POCARE_STORAGE", None),
    ({"POCARE_STORAGE": "s3"}, "POCARE_S3_BUCKET", None),
    ({"POCARE_MONITOR_TOKEN": "short"}, "POCARE_MONITOR_TOKEN", None),
    ({"POCARE_MONITOR_ADDRESSES": "10.0.5.0/24, intranet"}, "POCARE_MONITOR_ADDRESSES", None),
    ({"POCARE_LOG_FORMAT": "xml"}, "POCARE_LOG_FORMAT", None),
    ({"POCARE_ANCHOR_MAX_AGE_MINUTES": "two hours"}, "POCARE_ANCHOR_MAX_AGE_MINUTES", None),
])
def test_settings_refuse_what_they_cannot_use_naming_the_variable(tmp_path, env, named, secret):
    done = subprocess.run([sys.executable, "-c", "import pocare.settings"], capture_output=True, text=True, timeout=60,
                          env={"PATH": os.environ["PATH"], "PYTHONPATH": SRC, "POCARE_VAR_DIR": str(tmp_path), **env})
    assert done.returncode != 0 and "ImproperlyConfigured" in done.stderr and named in done.stderr, done.stderr[-500:]
    if secret:
        assert secret not in done.stderr
