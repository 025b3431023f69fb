"""The domain lint's rule against writing another app's models (tools/lint_domain.py): small modules
fed to it, each pattern once flagged and once let through, and the code base as it stands."""

from __future__ import annotations

import importlib.util
import textwrap
from pathlib import Path
from types import ModuleType

import pytest

TOOL = Path(__file__).resolve().parent.parent / "tools" / "lint_domain.py"


def _load() -> ModuleType:
    spec = importlib.util.spec_from_file_location("lint_domain", TOOL)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


lint = _load()

IMPORTS = """\
from pocare.custody.models import OrderStatus, TherapyOrder
from pocare.manufacturing.models import Batch
from pocare.network import models as network_models
import pocare.quality.models
"""


def flagged(body: str, app: str = "manufacturing") -> list[int]:
    """The lines (of ``body``, from 1) the rule flags in a module of ``app`` that starts with IMPORTS."""
    source = IMPORTS + textwrap.dedent(body)
    offset = IMPORTS.count("\n")
    return [line - offset for line, _ in lint.cross_app_writes(source, app)]


@pytest.mark.parametrize("body", [
    "TherapyOrder.objects.create(status='requested')",
    "TherapyOrder.objects.filter(pk=1).update(status='accepted')",
    "TherapyOrder.objects.select_for_update().filter(pk=1).delete()",
    "TherapyOrder.objects.bulk_create([])",
    "TherapyOrder.objects.bulk_update([], ['status'])",
    "TherapyOrder.objects.get_or_create(pk=1)",
    "TherapyOrder.objects.update_or_create(pk=1, defaults={})",
    "TherapyOrder(status='requested').save()",
    "network_models.Site.objects.create(code='X')",
    "pocare.quality.models.Deviation.objects.filter(pk=1).update(title='x')",
])
def test_a_write_through_another_apps_model_is_flagged(body):
    """P11-10e: a manager, queryset or new row of another app's model that writes, outside that
    app's services, is flagged (its event would be missing)."""
    assert flagged(body) == [1]


@pytest.mark.parametrize("body", [
    """\
    def start(pk):
        order = TherapyOrder.objects.get(pk=pk)
        order.status = 'in_manufacture'
        order.save(update_fields=['status'])
    """,
    """\
    def start(pk):
        order = TherapyOrder.objects.filter(pk=pk).first()
        order.delete()
    """,
    """\
    def start(pk):
        orders = TherapyOrder.objects.filter(pk=pk)
        orders.update(status='in_manufacture')
    """,
    """\
    def start():
        order = TherapyOrder(status='requested')
        order.save()
    """,
    """\
    def start():
        for order in TherapyOrder.objects.filter(status='accepted'):
            order.save()
    """,
    """\
    def start(*, order: TherapyOrder | None):
        order.save()
    """,
])
def test_a_write_to_a_row_bound_from_another_apps_model_is_flagged(body):
    """P11-10e: ``.save()``, ``.delete()`` and ``.update()`` on a name the function bound from another
    app's model (a query, a new row, a loop over a query, an annotated parameter) are flagged."""
    assert len(flagged(body)) == 1


@pytest.mark.parametrize("body", [
    "Batch.objects.create(reference='B1')",  # the app's own model
    "TherapyOrder.objects.filter(pk=1).exists()",  # a read
    "OrderStatus(status).label.lower()",  # a choice, read
    """\
    def start(pk):
        order = TherapyOrder.objects.get(pk=pk)
        order = Batch.objects.get(pk=pk)
        order.save()
    """,  # rebound to the app's own model before the write
    """\
    def start(pk, values):
        order = TherapyOrder.objects.get(pk=pk)
        values.update(status=order.status)
    """,  # a dict's update, not the row's
    "TherapyOrder.objects.filter(pk=1).update(status='x')  # lint: allow test of the allowance",
])
def test_reads_own_writes_and_allowed_lines_pass(body):
    """Reads, writes to the app's own models, rebound names, other objects' ``update`` and a line
    that gives its reason to be allowed are not flagged."""
    assert flagged(body) == []


def test_an_allowance_without_a_reason_does_not_count():
    assert flagged("TherapyOrder.objects.filter(pk=1).delete()  # lint: allow") == [1]


def test_the_owning_app_writes_its_own_models():
    assert flagged("TherapyOrder.objects.filter(pk=1).update(status='x')", app="custody") == []


def test_the_message_names_the_owner_and_the_way_out():
    [(_, message)] = lint.cross_app_writes(IMPORTS + "TherapyOrder(status='requested').save()\n", "quality")
    assert "custody.TherapyOrder" in message and "call a custody service" in message


def test_the_demo_is_left_to_the_demo_app():
    """Demo loaders (``demo.py``, ``history.py``, ``src/pocare/demo/``) and migrations are not read."""
    checked = {path.relative_to(lint.ROOT).as_posix() for path, _ in lint._app_modules()}
    assert "custody/services.py" in checked
    assert not any(p.endswith(("/demo.py", "/history.py")) or p.startswith("demo/") or "/migrations/" in p
                   for p in checked)


def test_the_code_base_writes_no_other_apps_models():
    """P11-10e: every state change of an app's records goes through that app's services."""
    problems = [p for p in lint.check() if "outside the" in p]
    assert problems == []


@pytest.mark.parametrize(("source", "lines"), [
    ("def f():\n    from pocare.custody import services\n    return services\n", [2]),
    ("def f():\n    x = 1\n    import json\n    return json, x\n", [3]),
    ("class A:\n    def f(self):\n        from a import b\n        from c import d\n        return b, d\n", [3, 4]),
    ("def f():\n    import weasyprint  # late: needs Pango from the system\n    return weasyprint\n", []),
    ("def f():\n    # late: the app registry is not ready at module level\n    from a import b\n    from c import d\n"
     "    return b, d\n", []),
    ("from a import b\n\n\ndef f():\n    return b\n", []),
])
def test_an_import_inside_a_function_must_say_why(source, lines):
    """An import inside a function with no comment on its line or above its group is flagged; one
    that says why, or one at module level, is not (docs/architecture.md)."""
    assert lint.unexplained_late_imports(source) == lines
