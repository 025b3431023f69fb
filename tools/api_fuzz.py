"""Fuzz the whole OpenAPI schema with schemathesis against a real server; fail on any 5xx.

Starts `pocare serve` on a throw-away SQLite database loaded with the demo network, issues a
token for Control Site QA (who may call every endpoint) and runs `schemathesis run` with the
`not_a_server_error` check over every operation. `tools/api_fuzz_hooks.py` makes part of the drawn
requests hostile (one body or query value replaced by a year-1 time with an offset, NUL, a
400-digit number, JSON nested 200 deep, a 300,000-character string).

Token revocation is left out of the fuzzing (it would revoke the fuzzer's own token and turn every
later request into a 401); the unit tests in tests/api/ cover it. So is the inspector bundle: it
takes no input but the batch reference, costs about 3 s of CPU each, and forty of them queued
behind one another outlast any request timeout on two cores (tests/release/test_bundle.py covers
it; building it as a background job is issue 16's).

The FHIR endpoint (/fhir/, docs/fhir.md) is in the schema and fuzzed with the rest;
``POCARE_FUZZ_PATHS='^/fhir/'`` fuzzes only the paths that match.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

BIN = Path(sys.executable).parent


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def main() -> int:
    with tempfile.TemporaryDirectory(prefix="pocare-fuzz-") as var:
        # Wrong signature passwords are what a fuzzer sends most: at the real threshold they lock the
        # token's owner after five (P11-300, tested in tests/accounts) and every later operation would
        # be fuzzed only as a 401. The fuzz server raises the threshold so each operation is reached.
        env = {**os.environ, "POCARE_VAR_DIR": var, "DATABASE_URL": "", "POCARE_LOG_LEVEL": "ERROR",
               "POCARE_LOCKOUT_THRESHOLD": "1000000"}
        pocare = str(BIN / "pocare")
        subprocess.run([pocare, "migrate", "--no-input", "-v", "0"], env=env, check=True)
        subprocess.run([pocare, "demo"], env=env, check=True, stdout=subprocess.DEVNULL)
        token = subprocess.run([pocare, "token", "issue", "qa", "schemathesis", "--reason", "API fuzzing"],
                               env=env, check=True, capture_output=True, text=True).stdout.strip()
        port = free_port()
        server = subprocess.Popen([pocare, "serve", "--port", str(port)], env=env, stdout=subprocess.DEVNULL)
        try:
            base = f"http://127.0.0.1:{port}"
            for _ in range(100):
                try:
                    socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
                    break
                except OSError:
                    time.sleep(0.1)
            result = subprocess.run(
                [str(BIN / "schemathesis"), "run", f"{base}/api/schema/", "--url", base,
                 "--checks", "not_a_server_error", "--header", f"Authorization: Bearer {token}",
                 "--max-examples", os.environ.get("POCARE_FUZZ_EXAMPLES", "40"),
                 "--seed", "20261123", "--no-color",
                 "--request-timeout", "60", "--wait-for-schema", "120",  # a loaded machine starts slowly
                 "--exclude-path-regex", "/revoke/$|/bundle/$",
                 # POCARE_FUZZ_PATHS=^/fhir/ fuzzes one part of the API (a regular expression of paths).
                 *(["--include-path-regex", os.environ["POCARE_FUZZ_PATHS"]] if os.environ.get("POCARE_FUZZ_PATHS")
                   else [])],
                env={**env, "SCHEMATHESIS_HOOKS": "api_fuzz_hooks",
                     "PYTHONPATH": os.pathsep.join(filter(None, [str(Path(__file__).resolve().parent),
                                                                 env.get("PYTHONPATH", "")]))},
            )
            return result.returncode
        finally:
            server.terminate()
            server.wait(timeout=10)


if __name__ == "__main__":
    sys.exit(main())
