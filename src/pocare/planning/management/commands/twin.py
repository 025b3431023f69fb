"""``pocare twin``: replicate a scenario of the digital twin and write an HTML report."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from pocare.planning import live, report, study, twin
from pocare.planning.management.outputs import outputs_checked
from pocare.planning.study import SCENARIOS


class Command(BaseCommand):
    help = "Run the digital twin (baseline and a scenario) over replications on Dask; write an HTML report."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--scenario", default="baseline", choices=SCENARIOS)
        parser.add_argument("--live", action="store_true", help="the live network and its batch records")
        parser.add_argument("--sites", type=int, default=30, help="synthetic network: sites")
        parser.add_argument("--referrals", type=float, default=None,
                            help="referrals per year (default: with --live, the therapy orders of the last "
                                 f"{live.REFERRAL_WINDOW_DAYS} days extrapolated; synthetic network 10,000)")
        parser.add_argument("--units-per-site", type=int, default=10)
        parser.add_argument("--site", default="", help="site for units/outage")
        parser.add_argument("--hub", default="", help="hub for centralized")
        parser.add_argument("--units", type=int, default=0)
        parser.add_argument("--start-day", type=float, default=90.0)
        parser.add_argument("--days", type=float, default=28.0, help="outage days")
        parser.add_argument("--weeks", type=float, default=4.0, help="disruption weeks (1-104)")
        parser.add_argument("--material", default="lentiviral vector",
                            help="disruption/supply: the material stopped (its code in the live network)")
        parser.add_argument("--supplier", default="",
                            help="supply: stop this supplier (the materials only it supplies)")
        parser.add_argument("--kits-per-site", type=float, default=0.0,
                            help="synthetic network, supply: kits of the material at each site")
        parser.add_argument("--depot-kits", type=float, default=0.0,
                            help="synthetic network, supply: kits in one depot serving every site")
        parser.add_argument("--lead-time-days", type=float, default=None,
                            help="days from a disruption's end to the first delivery (default: the approved "
                                 "suppliers' with --live, none for a synthetic network)")
        parser.add_argument("--replications", type=int, default=4)
        parser.add_argument("--seed", type=int, default=1)
        parser.add_argument("--horizon-days", type=float, default=365.0)
        parser.add_argument("--scheduler", default=None,
                            help="Dask scheduler address; 'in-process' to run here; default a local cluster")
        parser.add_argument("--dashboard", default=None,
                            help="serve the local cluster's Dask dashboard at this address (e.g. :8787); none "
                                 "by default")
        parser.add_argument("--out", default="twin-report.html")
        parser.add_argument("--json", help="also write the result as JSON here")

    def handle(self, *args: Any, **o: Any) -> None:
        outputs_checked(o)
        params: dict[str, Any] = {"scenario": o["scenario"], "sites": o["sites"], "units_per_site": o["units_per_site"],
                                  "site": o["site"], "hub": o["hub"], "units": o["units"],
                                  "start_day": o["start_day"], "days": o["days"], "weeks": o["weeks"],
                                  "replications": o["replications"], "seed": o["seed"],
                                  "horizon_days": o["horizon_days"], "material": o["material"],
                                  "supplier": o["supplier"], "kits_per_site": o["kits_per_site"],
                                  "depot_kits": o["depot_kits"], "lead_time_days": o["lead_time_days"]}
        if o["referrals"] is not None:
            params["referrals_per_year"] = o["referrals"]
        try:
            if o["live"]:
                config, used = live.twin_network(referrals_per_year=o["referrals"])
                params["network"] = twin.config_to_dict(config)
                params["demand"] = used.pop("demand")
                self.stdout.write(f"Live network: {used}")
            small = study.small_run(params, "twin")
            if small:
                self.stdout.write(self.style.WARNING(small))

            def progress(pct: int) -> None:
                self.stdout.write(f"  {pct:3d} %")

            result = study.twin_study(params, progress=progress, scheduler=o["scheduler"], dashboard=o["dashboard"],
                                      verbose=o["verbosity"] >= 2)
        except (ValueError, OSError, RuntimeError) as exc:
            raise CommandError(str(exc)) from exc
        Path(o["out"]).write_text(report.document(result, title=f"POCare digital twin — {o['scenario']}"),
                                  encoding="utf-8")
        if o["json"]:
            Path(o["json"]).write_text(json.dumps(result), encoding="utf-8")
        self.stdout.write(f"Demand: {result['parameters']['demand']}")
        self._summary(result)
        self.stdout.write(f"Report: {o['out']}")

    def _summary(self, result: dict[str, Any]) -> None:
        for s in result["scenarios"]:
            m = s["summary"]
            self.stdout.write(f"{s['name']}: share treated {m['share_treated']['mean']:.3f}, vein-to-vein median "
                              f"{m['v2v_median']['mean'] or 0:.1f} d, referral-to-infusion p90 "
                              f"{m['r2i_p90']['mean'] or 0:.1f} d, utilization {m['utilization']['mean']:.2f}")
            if s["name"] in (study.WITH_BUFFER, study.WITHOUT_BUFFER):
                row = result["supply"]["rows"][s["name"]]
                self.stdout.write(f"  supply disruption {s['name']}: {row['delayed_supply'] or 0:.1f} patients "
                                  f"delayed, {row['lost_supply'] or 0:.1f} lost waiting for material, "
                                  f"{row['extra_lost']:.1f} lost beyond the baseline, added wait "
                                  f"{row['supply_wait_mean'] or 0:.1f} d")
            why = s["diagnosis"]
            if why["low"]:
                self.stdout.write(self.style.WARNING(f"Warning — {s['name']}: {why['text']}"))
