"""Production as people deploy it: behind a TLS proxy, with security headers, no debug pages,
and a `pocare check` that notices a ledger left editable."""

from __future__ import annotations

import http.client
import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
from django.core.management import call_command
from django.core.management.base import SystemCheckError

from tests.conftest import drop_triggers

POCARE = str(Path(sys.executable).parent / "pocare")
SECRET = "k" * 20 + "0123456789abcdefghijklmnopqrstuvwxyzABCD"


def _env(tmp_path: Path, **extra: str) -> dict[str, str]:
    src = str(Path(__file__).resolve().parents[1] / "src")  # this checkout, not whatever is installed
    return {"PATH": os.environ["PATH"], "PYTHONPATH": src, "POCARE_VAR_DIR": str(tmp_path), "HOME": str(tmp_path),
            "POCARE_STATIC_ROOT": str(tmp_path / "static"), **extra}


def _run(args: list[str], env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run([POCARE, *args], capture_output=True, text=True, env=env, timeout=300)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _get(port: int, path: str, headers: dict[str, str]) -> http.client.HTTPResponse:
    deadline = time.monotonic() + 30
    while True:
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
        try:
            conn.request("GET", path, headers={"Host": "127.0.0.1", **headers})
            response = conn.getresponse()
            response.read()
            return response
        except ConnectionRefusedError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.2)
        finally:
            conn.close()


PRODUCTION = {"POCARE_ENV": "production", "POCARE_SECRET_KEY": SECRET, "POCARE_ALLOWED_HOSTS": "127.0.0.1"}


@pytest.fixture(scope="module")
def production_var(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A throwaway production installation: SQLite migrated, static files collected."""
    var = tmp_path_factory.mktemp("production")
    env = _env(var, **PRODUCTION)
    for args in (["migrate", "--no-input", "-v", "0"], ["collectstatic", "--no-input", "-v", "0"]):
        done = _run(args, env)
        assert done.returncode == 0, done.stdout + done.stderr
    return var


@contextmanager
def _serving(var: Path, *, production: bool = True, **extra: str) -> Iterator[int]:
    port = _free_port()
    server = subprocess.Popen([POCARE, "serve", "--host", "127.0.0.1", "--port", str(port), "--threads", "2"],
                              env=_env(var, **(PRODUCTION if production else {}), **extra), stdout=subprocess.DEVNULL,
                              stderr=subprocess.DEVNULL)
    try:
        yield port
    finally:
        server.terminate()
        server.wait(timeout=10)


def test_production_behind_a_tls_proxy_serves_pages_when_the_proxy_says_https(production_var):
    """P11-300: `pocare serve` in production mode with the proxy at 127.0.0.1 trusted: a request the
    proxy forwarded with X-Forwarded-Proto: https gets the login page (200, HSTS, CSP); the same
    request without the header is redirected to https (301)."""
    with _serving(production_var, POCARE_TRUSTED_PROXY="127.0.0.1") as port:
        forwarded = _get(port, "/login/", {"X-Forwarded-Proto": "https", "X-Forwarded-For": "203.0.113.9"})
        assert forwarded.status == 200, forwarded.status
        assert "max-age=31536000" in (forwarded.getheader("Strict-Transport-Security") or "")
        assert "default-src 'self'" in (forwarded.getheader("Content-Security-Policy") or "")
        plain = _get(port, "/login/", {})
        assert plain.status == 301 and plain.getheader("Location") == "https://127.0.0.1/login/"


def test_a_peer_that_is_not_the_trusted_proxy_cannot_claim_https(production_var):
    """P11-300: X-Forwarded-Proto from anyone but the named proxy is dropped by the server, so a
    client that reaches `pocare serve` directly cannot pass for an HTTPS request."""
    with _serving(production_var, POCARE_TRUSTED_PROXY="192.0.2.1") as port:
        spoofed = _get(port, "/login/", {"X-Forwarded-Proto": "https"})
        assert spoofed.status == 301 and spoofed.getheader("Location") == "https://127.0.0.1/login/"


def test_production_without_a_trusted_proxy_fails_the_deployment_check_naming_the_setting(tmp_path):
    """P11-300: the redirect-for-ever configuration cannot pass `check --deploy` silently; with the
    proxy named, the check passes without a single warning."""
    result = _run(["check", "--deploy"], _env(tmp_path, **PRODUCTION))
    assert result.returncode != 0
    assert "pocare.E002" in result.stderr and "POCARE_TRUSTED_PROXY" in result.stderr
    named = _run(["check", "--deploy", "--fail-level", "WARNING"],
                 _env(tmp_path, **PRODUCTION, POCARE_TRUSTED_PROXY="127.0.0.1"))
    assert named.returncode == 0, named.stdout + named.stderr
    anyone = _run(["check", "--deploy", "--fail-level", "WARNING"],
                  _env(tmp_path, **PRODUCTION, POCARE_TRUSTED_PROXY="*"))
    assert anyone.returncode != 0 and "pocare.W003" in anyone.stderr


@pytest.mark.django_db
def test_plain_check_names_a_missing_ledger_trigger():
    """P11-10e: `pocare check`, without --database or --deploy, fails naming the trigger dropped."""
    call_command("check")  # intact: passes
    drop_triggers()
    with pytest.raises(SystemCheckError) as refused:
        call_command("check")
    assert "pocare.E001" in str(refused.value)
    assert "ledger_event_" in str(refused.value) and "append-only triggers missing" in str(refused.value)


def test_check_on_a_database_not_created_yet_passes_and_creates_nothing(tmp_path):
    """A fresh install: `pocare check` before `migrate` neither fails on the trigger check nor
    creates an empty database file."""
    result = _run(["check"], _env(tmp_path))
    assert result.returncode == 0, result.stdout + result.stderr
    assert not (tmp_path / "pocare.sqlite3").exists()


@pytest.mark.django_db
@pytest.mark.parametrize("path", ["/login/", "/", "/no-such-page/", "/api/sites/"])
def test_every_response_carries_the_security_headers(client, path):
    """P11-300: CSP without inline script, Referrer-Policy and Permissions-Policy on pages,
    redirects, error pages and the API alike."""
    response = client.get(path)
    csp = response.headers["Content-Security-Policy"]
    # django-csp writes the directives in no fixed order: compare them as a set, not as text.
    directives = {part.strip() for part in csp.split(";")}
    assert "script-src 'self'" in directives
    for directive in ("default-src 'self'", "frame-ancestors 'none'", "form-action 'self'", "base-uri 'none'",
                      "object-src 'none'", "img-src 'self' data:"):
        assert directive in directives
    assert response.headers["Referrer-Policy"] == "same-origin"
    assert "camera=()" in response.headers["Permissions-Policy"]
    assert "geolocation=()" in response.headers["Permissions-Policy"]


def test_no_template_has_inline_script_or_event_handlers():
    """P11-300: everything the CSP would block is gone from the templates (script-src 'self')."""
    import re

    src = Path(__file__).resolve().parents[1] / "src" / "pocare"
    offenders = []
    for template in src.rglob("templates/**/*.html"):
        text = template.read_text()
        for pattern in (r"<script(?![^>]*\ssrc=)[^>]*>", r"\son[a-z]+\s*=", r"hx-on[:-]", r"javascript:"):
            offenders += [f"{template.relative_to(src)}: {m.group(0)}" for m in re.finditer(pattern, text)]
    assert not offenders, offenders


def test_the_demo_404_page_lists_no_url_map(tmp_path):
    """The demo (no POCARE_ENV, no POCARE_DEBUG) shows POCare's own 404 page, not Django's
    debug page with the URL map."""
    env = _env(tmp_path)
    code = ("from django.test import Client;from django.conf import settings;"
            "r=Client(HTTP_HOST='127.0.0.1').get('/no-such-page/');"
            "print('DEBUG', settings.DEBUG, r.status_code, 'URLconf' in r.content.decode(), "
            "'api/schema' in r.content.decode(), 'This page does not exist' in r.content.decode())")
    result = _run(["shell", "-v", "0", "-c", code], env)
    assert result.stdout.strip().splitlines()[-1] == "DEBUG False 404 False False True", result.stdout + result.stderr


def test_the_demo_server_serves_static_files_and_a_404_that_lists_nothing(tmp_path):
    """`make demo` (no POCARE_ENV, DEBUG off): WhiteNoise still serves the static files from the
    apps, and an unknown address gets POCare's 404 page, not Django's URL map."""
    with _serving(tmp_path, production=False) as port:
        script = _get(port, "/static/web/pocare.js", {})
        assert script.status == 200 and "javascript" in (script.getheader("Content-Type") or "")
        assert _get(port, "/static/vendor/htmx.min.js", {}).status == 200
        missing = _get(port, "/no-such-page/", {})
        assert missing.status == 404 and "default-src 'self'" in (missing.getheader("Content-Security-Policy") or "")
