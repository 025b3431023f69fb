"""What the comparability monitor computed, stored so that the pages read it instead of recomputing
on every request (REQUIREMENTS.md CMP-SITE, CMP-STAT; ICH Q10 monitoring)."""

from __future__ import annotations

from django.db import models

STATUS_CHOICES = [("equivalent", "equivalent"), ("not-equivalent", "not equivalent"),
                  ("too-few-lots", "too few lots"), ("no-reference", "no reference"), ("no-data", "no lots")]


class ComparabilityResult(models.Model):
    """One site × attribute of a master-file version as the monitor last assessed it: the verdict, the
    figures the matrix shows, when it was computed and from how many lots (and a hash of them), so a
    page can say "computed 2026-12-05 14:00 CET from 1,234 lots" without touching a QC result. The
    monitor replaces the row at each run (the run itself is in the ledger, analytics.monitor_run)."""

    version = models.ForeignKey("masterfile.MasterFileVersion", on_delete=models.PROTECT, related_name="+")
    site = models.ForeignKey("network.Site", on_delete=models.PROTECT, related_name="+")
    attribute_id = models.CharField(max_length=64)
    position = models.PositiveSmallIntegerField(default=0, help_text="The attribute's place in the specification.")
    status = models.CharField(max_length=16, choices=STATUS_CHOICES)
    reason = models.TextField(blank=True)
    lots = models.PositiveIntegerField(help_text="The site's lots of this attribute under the version.")
    network_lots = models.PositiveIntegerField(help_text="Every site's lots of this attribute under the version.")
    inputs_hash = models.CharField(max_length=64, help_text="sha256 of the lots (batch, value) it was computed from.")
    cell = models.JSONField(default=dict, help_text="The figures of the cell: TOST interval, alarms, Cpk.")
    attribute = models.JSONField(default=dict, help_text="The attribute across the network: name, unit, ANOVA.")
    charts = models.JSONField(default=dict, help_text="The figures behind the site's charts (lot values, limits, "
                              "EWMA, CUSUM, rules): read by the site page only, never by the matrix.")
    computed_at = models.DateTimeField(help_text="The monitor run's moment (UTC): lots started before it.")

    class Meta:
        constraints = [models.UniqueConstraint(fields=["version", "site", "attribute_id"],
                                               name="analytics_result_one_per_cell")]
        ordering = ["version", "site__code", "position"]

    def __str__(self) -> str:
        return f"{self.site_id} {self.attribute_id}: {self.status}"
