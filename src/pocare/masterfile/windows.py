"""Process time windows (P11-10f, DI-ALCOA "contemporaneous"): when the master file lets a step be
performed, relative to the batch start or to an earlier step, and whether a performance lies
inside.

A step's ``window`` (:class:`pocare.masterfile.schema.TimeWindow`) says "between ``earliest_hours``
and ``latest_hours`` after the anchor". The anchor's moment is when the anchor step was performed
(recorded, by the server's clock) or, without an anchor, when the batch started. The batch record
checks a step against its window when it is recorded; review by exception and the release
checklist read the same check from the stored times.

Pure module (no Django import): the batch record, review and release use the same rule.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

INSIDE, EARLY, LATE = "inside", "early", "late"


def hours_text(hours: float) -> str:
    """``36 h``, ``1.5 h``, ``4 d 12 h`` (days shown from two days on)."""
    if hours >= 48:
        days, rest = divmod(hours, 24)
        return f"{days:g} d" + (f" {rest:g} h" if rest else "")
    return f"{hours:g} h"


def anchor_label(window: Mapping[str, Any]) -> str:
    return f"step {window['anchor']}" if window.get("anchor") else "the batch start"


def window_text(window: Mapping[str, Any] | None) -> str:
    """``18–30 h after step activation (critical)``, or ``—`` without a window."""
    if not window:
        return "—"
    low, high = float(window["earliest_hours"]), float(window["latest_hours"])
    span = f"{hours_text(low)}–{hours_text(high)}" if low != high else f"exactly {hours_text(low)}"
    return f"{span} after {anchor_label(window)}" + (" (critical)" if window.get("critical") else "")


@dataclass(frozen=True)
class WindowCheck:
    """A performance checked against its step's window: inside, early or late, and a sentence
    naming the window, the anchor and the elapsed time."""

    step_id: str
    window: Mapping[str, Any]
    anchor_at: dt.datetime
    performed_at: dt.datetime
    state: str

    @property
    def inside(self) -> bool:
        return self.state == INSIDE

    @property
    def critical(self) -> bool:
        return bool(self.window.get("critical"))

    @property
    def elapsed_hours(self) -> float:
        return (self.performed_at - self.anchor_at).total_seconds() / 3600

    def message(self) -> str:
        elapsed = self.elapsed_hours
        shown = f"{elapsed:.1f} h" if abs(elapsed) >= 1 else f"{round(elapsed * 60)} min"
        where = {INSIDE: "inside", EARLY: "too early for", LATE: "too late for"}[self.state]
        return (f"Step {self.step_id} performed {shown} after {anchor_label(self.window)} "
                f"({self.anchor_at.astimezone(dt.UTC):%Y-%m-%d %H:%M} UTC): {where} its time window, "
                f"{window_text({**self.window, 'critical': False})}.")


def check(step_id: str, window: Mapping[str, Any] | None, *, anchor_at: dt.datetime | None,
          performed_at: dt.datetime) -> WindowCheck | None:
    """The performance of ``step_id`` at ``performed_at`` against its ``window`` whose anchor
    happened at ``anchor_at``; ``None`` when the step has no window or its anchor never happened."""
    if not window or anchor_at is None:
        return None
    elapsed = (performed_at - anchor_at).total_seconds() / 3600
    state = (EARLY if elapsed < float(window["earliest_hours"])
             else LATE if elapsed > float(window["latest_hours"]) else INSIDE)
    return WindowCheck(step_id, window, anchor_at, performed_at, state)


def anchor_moment(window: Mapping[str, Any], *, batch_started_at: dt.datetime,
                  performed: Mapping[str, dt.datetime | None]) -> dt.datetime | None:
    """When the window's anchor happened: the anchor step's performance (``performed``: step id to
    when it was performed), or the batch start."""
    anchor = window.get("anchor")
    return performed.get(str(anchor)) if anchor else batch_started_at


def check_all(steps: Sequence[Mapping[str, Any]], *, batch_started_at: dt.datetime,
              performed: Mapping[str, dt.datetime | None]) -> dict[str, WindowCheck]:
    """Every performed step that has a window, checked (step id to its check)."""
    out: dict[str, WindowCheck] = {}
    for step in steps:
        when, window = performed.get(step["id"]), step.get("window")
        if when is None or not window:
            continue
        found = check(step["id"], window, performed_at=when,
                      anchor_at=anchor_moment(window, batch_started_at=batch_started_at, performed=performed))
        if found is not None:
            out[step["id"]] = found
    return out
