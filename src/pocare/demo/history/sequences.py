"""Sequence numbers of the history (batch references, DINs, COIs, deviation references), continuing
after what the database holds, so that live numbering afterwards never collides."""

from __future__ import annotations

from pocare.custody.models import Collection, TherapyOrder
from pocare.manufacturing.models import Batch
from pocare.quality.models import Deviation


class Sequences:
    """Next free sequence numbers (batch references, DINs, COIs, deviation references), continuing
    after what the database has, so that later live numbering never collides."""

    def __init__(self) -> None:
        self._next: dict[tuple[str, str], int] = {}

    def take(self, kind: str, prefix: str) -> int:
        key = (kind, prefix)
        if key not in self._next:
            self._next[key] = self._last(kind, prefix) + 1
        number = self._next[key]
        self._next[key] = number + 1
        return number

    @staticmethod
    def _last(kind: str, prefix: str) -> int:
        values: list[str]
        if kind == "batch":
            values = list(Batch.objects.filter(reference__startswith=prefix).values_list("reference", flat=True))
        elif kind == "deviation":
            values = list(Deviation.objects.filter(reference__startswith=prefix).values_list("reference", flat=True))
        elif kind == "din":
            values = list(Collection.objects.filter(din__startswith=prefix).values_list("din", flat=True))
        else:  # coi
            values = [v for v in TherapyOrder.objects.filter(coi__startswith=prefix).values_list("coi", flat=True)
                      if v]
        if kind in ("batch", "deviation"):
            numbers = [v.rsplit("-", 1)[1] for v in values]
        else:  # the six-digit sequence after facility (5) and year (2); a COI starts with "C"
            numbers = [v[7:13] if kind == "din" else v[8:14] for v in values]
        return max((int(n) for n in numbers if n.isdigit()), default=0)
