"""Time to parse or refuse a master-file document at the 400 KB the form and API allow (issue 13).

    PYTHONPATH=src python benchmarks/masterfile_yaml.py

Each case goes through ``pocare.masterfile.schema.parse_document`` (what the form and the API call):
hostile shapes (nested brackets and mappings, an alias bomb, a 400-digit number, 20,000+ tiny values)
and legitimate ones (the demo document with 380 KB of review comments). The last line runs PyYAML's
pure-Python composer (what ran before) on 60 KB of nested brackets, for comparison.
"""

from __future__ import annotations

import signal
import time
from pathlib import Path

import yaml

from pocare.masterfile.schema import DocumentError, parse_document

SITES = ["MAD", "LIS", "MUC", "GRO", "MIL", "DUB"]
BASE = (Path(__file__).resolve().parent.parent / "src/pocare/demo/documents/cd19-cart-v1.yaml").read_text()


def cases() -> dict[str, str]:
    row = "- " + "{k: " * 19 + "v" + "}" * 19 + "\n"
    return {
        "nested brackets": "product: " + "[" * 200_000 + "]" * 199_990,
        "nested flow mappings": "a: " + "{b: " * 79_990 + "}" * 79_990,
        "alias bomb (billion laughs)": "a: &a [x,x,x,x,x,x,x,x,x]\nb: &b [*a,*a,*a,*a,*a,*a,*a,*a,*a]\n"
                                       "c: [*b,*b,*b,*b,*b,*b,*b,*b,*b]\n",
        "400-digit number": BASE.replace("expected_duration_min: 45", "expected_duration_min: " + "9" * 400, 1),
        "depth-20 rows (tiny values)": "extra:\n" + ("  " + row) * (399_000 // (len(row) + 2)),
        "19,500 values, under the bound": "extra:\n" + "".join(f"  k{i}: [1, 2, 3]\n" for i in range(3_900)),
        "demo + 380 KB of comments": BASE + "".join(f"# review note {i}: " + "x" * 60 + "\n" for i in range(4700)),
        "demo document as it is": BASE,
    }


def main() -> None:
    for name, text in cases().items():
        started = time.perf_counter()
        try:
            parse_document(text, known_sites=SITES)
            outcome = "parsed"
        except DocumentError as exc:
            outcome = "refused: " + str(exc.problems[0])[:70]
        print(f"{name:32s} {len(text):>9,} chars {time.perf_counter() - started:7.3f} s  {outcome}")

    def stop(*_: object) -> None:
        raise TimeoutError

    signal.signal(signal.SIGALRM, stop)
    signal.alarm(30)
    started = time.perf_counter()
    try:
        yaml.compose("product: " + "[" * 30_000 + "]" * 30_000, Loader=yaml.SafeLoader)
        outcome = "composed"
    except TimeoutError:
        outcome = "still running after 30 s (stopped)"
    except RecursionError:
        outcome = "RecursionError (a 500 before)"
    print(f"{'before: pure PyYAML, 60 KB':32s} {60_009:>9,} chars {time.perf_counter() - started:7.3f} s  {outcome}")


if __name__ == "__main__":
    main()
