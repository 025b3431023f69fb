"""``pocare plan``: a site-selection study from the command line, written as an HTML report."""

from __future__ import annotations

import csv
import json
from pathlib import Path
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from pocare.planning import demand, live, report, study
from pocare.planning.management.outputs import outputs_checked


class Command(BaseCommand):
    help = "Choose sites (MCLP, p-median, LSCP, capacitated) for a region and write an HTML report."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--region", default="ES", help="ISO country code(s), a continent or US-CA (default ES)")
        parser.add_argument("--model", default="mclp", choices=["mclp", "pmedian", "lscp", "capacitated"])
        parser.add_argument("--p", type=int, default=8, help="sites to open")
        parser.add_argument("--cover-minutes", type=float, default=120.0)
        parser.add_argument("--indications", default="lbcl", help="comma-separated: lbcl,myeloma,mcl,ball,fl")
        parser.add_argument("--max-points", type=int, default=4000)
        parser.add_argument("--max-candidates", type=int, default=150)
        parser.add_argument("--hospitals", help="CSV name,latitude,longitude[,units] of candidate hospitals")
        parser.add_argument("--network", action="store_true", help="keep the live network's sites open (fixed)")
        parser.add_argument("--equity-strength", type=float, default=0.0)
        parser.add_argument("--deprivation", help="CSV region,index of an external deprivation index")
        parser.add_argument("--circuity", type=float, default=None)
        parser.add_argument("--speed-kmh", type=float, default=None)
        parser.add_argument("--time-limit", type=float, default=60.0)
        parser.add_argument("--out", default="plan-report.html", help="HTML report file")
        parser.add_argument("--json", help="also write the result as JSON here")

    def handle(self, *args: Any, **o: Any) -> None:
        outputs_checked(o)
        params: dict[str, Any] = {"region": o["region"], "model": o["model"], "p": o["p"],
                                  "cover_minutes": o["cover_minutes"], "max_points": o["max_points"],
                                  "max_candidates": o["max_candidates"],
                                  "indications": [i.strip() for i in o["indications"].split(",") if i.strip()],
                                  "equity_strength": o["equity_strength"], "time_limit": o["time_limit"]}
        for key in ("circuity", "speed_kmh"):
            if o[key] is not None:
                params[key] = o[key]
        try:
            if o["hospitals"]:
                with open(o["hospitals"], newline="", encoding="utf-8") as handle:
                    params["hospitals"] = [{"name": r["name"], "latitude": r["latitude"], "longitude": r["longitude"],
                                            "units": r.get("units") or 2} for r in csv.DictReader(handle)]
                params["candidates"] = "hospitals"
            if o["deprivation"]:
                params["deprivation"] = demand.load_deprivation(o["deprivation"])
            if o["network"]:
                params["existing"] = [s for s in live.observed()["sites"] if s["units"] > 0]
            small = study.small_run(params, "plan")
            if small:
                self.stdout.write(self.style.WARNING(small))

            def progress(pct: int) -> None:
                self.stdout.write(f"  {pct:3d} %")

            result = study.plan_study(params, progress=progress)
        except (ValueError, OSError, KeyError, RuntimeError) as exc:
            raise CommandError(str(exc)) from exc
        Path(o["out"]).write_text(report.document(result, title=f"POCare site selection — {o['region']}"),
                                  encoding="utf-8")
        if o["json"]:
            Path(o["json"]).write_text(json.dumps(result), encoding="utf-8")
        s, a = result["solution"], result["after"]
        self.stdout.write(f"{s['model']}: {len(s['chosen'])} sites, objective {s['objective']:.4g}, {s['status']}, "
                          f"gap {100 * (s['gap'] or 0):.3f} %, {s['seconds']:.2f} s; patients ≤ 2 h "
                          f"{a['patients_2h']:.1f} of {a['patients']:.1f}. Report: {o['out']}")
