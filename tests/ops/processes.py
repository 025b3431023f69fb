"""An installation of several real `pocare` processes on the suite's database (docs/operations.md,
"Several servers").

:class:`Installation` starts `pocare serve` processes (and any other `pocare` command: a job worker,
`pocare worker`, once the job queue is installed) on the test database, each with a local
directory of its own (``POCARE_VAR_DIR``) that no other process sees, and the shared parts named
as production names them: the database, the files directory and the digest store (standing for a
network file system or object storage). :class:`Browser` is one person's cookie jar: cookies are
not told apart by port, so the jar sends the session made on one server to every server, as a
browser behind a load balancer does.
"""

from __future__ import annotations

import http.cookiejar
import json
import os
import re
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.parse
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from django.db import connection

POCARE = str(Path(sys.executable).parent / "pocare")
SRC = str(Path(__file__).resolve().parents[2] / "src")  # this checkout, not whatever is installed
MONITOR_TOKEN = "monitor-" + "0123456789abcdef" * 3


def database_url() -> str:
    """The URL of the database the suite runs on (the test database, committed by ``tx_db``)."""
    s = connection.settings_dict
    if connection.vendor == "sqlite":
        return f"sqlite:///{Path(s['NAME']).resolve()}"
    auth = s["USER"] + (f":{s['PASSWORD']}" if s.get("PASSWORD") else "")
    return f"postgres://{auth}@{s['HOST'] or '127.0.0.1'}:{s['PORT'] or 5432}/{s['NAME']}"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass
class Process:
    """One `pocare` process: its command, its own directory and what it wrote to standard error."""

    name: str
    popen: subprocess.Popen[bytes]
    var_dir: Path
    log: Path
    port: int | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def log_lines(self) -> list[dict[str, Any]]:
        """The JSON lines it logged so far (anything else it wrote is skipped)."""
        lines = []
        for line in self.log.read_text(encoding="utf-8", errors="replace").splitlines():
            if line.startswith("{"):
                lines.append(json.loads(line))
        return lines


@dataclass
class Installation:
    root: Path
    processes: list[Process] = field(default_factory=list)

    @property
    def shared(self) -> Path:
        return self.root / "shared"

    def env(self, var_dir: Path, **extra: str) -> dict[str, str]:
        return {
            "PATH": os.environ["PATH"], "PYTHONPATH": SRC, "HOME": str(var_dir), "DATABASE_URL": database_url(),
            "POCARE_VAR_DIR": str(var_dir), "POCARE_ALLOWED_HOSTS": "127.0.0.1",
            "POCARE_FILES_DIR": str(self.shared / "files"), "POCARE_DIGEST_DIR": str(self.shared / "digests"),
            "POCARE_ANCHOR_KEY": str(self.shared / "anchor" / "ed25519.pem"),
            "POCARE_MONITOR_TOKEN": MONITOR_TOKEN, "POCARE_LOG_FORMAT": "json", **extra,
        }

    def start(self, name: str, *args: str, port: int | None = None, **env: str) -> Process:
        """Start `pocare <args>` as ``name``, with a directory of its own."""
        var_dir = self.root / name
        var_dir.mkdir(parents=True, exist_ok=True)
        log = var_dir / "stderr.log"
        with log.open("wb") as err:
            popen = subprocess.Popen([POCARE, *args], env=self.env(var_dir, **env), stdout=subprocess.DEVNULL,
                                     stderr=err)
        process = Process(name, popen, var_dir, log, port)
        self.processes.append(process)
        return process

    def serve(self, name: str, **env: str) -> Process:
        """A `pocare serve` process on a port of its own, once it answers."""
        port = free_port()
        process = self.start(name, "serve", "--host", "127.0.0.1", "--port", str(port), "--threads", "4",
                             port=port, **env)
        deadline = time.monotonic() + 60
        while True:
            try:
                with urllib.request.urlopen(f"{process.url}/health/?only=database", timeout=5):  # noqa: S310
                    return process
            except urllib.error.HTTPError:
                return process  # it answers (a failing check is still an answer)
            except (urllib.error.URLError, ConnectionError):
                if process.popen.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError(f"{name} did not start: {process.log.read_text()[-3000:]}") from None
                time.sleep(0.2)

    def stop_all(self) -> None:
        for process in self.processes:
            if process.popen.poll() is None:
                process.popen.terminate()
        for process in self.processes:
            try:
                process.popen.wait(timeout=15)
            except subprocess.TimeoutExpired:
                process.popen.kill()
                process.popen.wait(timeout=5)


@dataclass
class Response:
    status: int
    headers: dict[str, str]
    body: bytes

    def json(self) -> Any:
        return json.loads(self.body)

    @property
    def text(self) -> str:
        return self.body.decode("utf-8", errors="replace")


class Browser:
    """One person's cookies, sent to whichever server is asked (cookies ignore the port)."""

    def __init__(self) -> None:
        self.jar = http.cookiejar.CookieJar()
        self.opener = urllib.request.build_opener(urllib.request.HTTPCookieProcessor(self.jar),
                                                  _NoRedirect())

    def cookie(self, name: str) -> str:
        return next((c.value or "" for c in self.jar if c.name == name), "")

    def request(self, method: str, url: str, *, form: dict[str, str] | None = None, data: Any = None,
                headers: dict[str, str] | None = None) -> Response:
        body, all_headers = None, {"Host": "127.0.0.1", **(headers or {})}
        if form is not None:
            body = urllib.parse.urlencode(form).encode()
            all_headers["Content-Type"] = "application/x-www-form-urlencoded"
        elif data is not None:
            body = json.dumps(data).encode()
            all_headers["Content-Type"] = "application/json"
        if method != "GET" and self.cookie("csrftoken"):
            all_headers["X-CSRFToken"] = self.cookie("csrftoken")
        req = urllib.request.Request(url, data=body, method=method, headers=all_headers)  # noqa: S310
        try:
            with self.opener.open(req, timeout=60) as r:
                return Response(r.status, dict(r.headers), r.read())
        except urllib.error.HTTPError as e:
            return Response(e.code, dict(e.headers), e.read())

    def get(self, url: str, **kwargs: Any) -> Response:
        return self.request("GET", url, **kwargs)

    def post(self, url: str, **kwargs: Any) -> Response:
        return self.request("POST", url, **kwargs)

    def log_in(self, server: Process, username: str, password: str) -> Response:
        page = self.get(f"{server.url}/login/")
        token = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', page.text)
        assert token, page.text[:500]
        return self.post(f"{server.url}/login/", form={"username": username, "password": password,
                                                        "csrfmiddlewaretoken": token.group(1)})


class _NoRedirect(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, *args: Any, **kwargs: Any) -> None:
        return None  # a redirect is an answer to look at, not to follow
