from django.apps import AppConfig


class SupplyConfig(AppConfig):
    """Materials, approved suppliers and stock by location and lot (docs/supply.md). Above the batch
    record: it answers manufacturing's questions (a lot's supplier not approved holds its release;
    stock decrements in the step's transaction) through ``pocare.core.registry``."""

    name = "pocare.supply"
    label = "supply"
    verbose_name = "Supply: suppliers and stock"

    def ready(self) -> None:
        # Answers are registered by the module that computes them (docs/architecture.md, "Asking
        # upward"); the import is here because the answers need the app registry.
        from pocare.supply import answers

        answers.register()
