from django.apps import AppConfig


class CostsConfig(AppConfig):
    """The signed cost model and the cost of each batch from its records (docs/costs.md, COST-BATCH).
    Above supply and patients (it reads what they record), below planning (its business cases will
    use the model)."""

    name = "pocare.costs"
    label = "costs"
    verbose_name = "Costs: the cost model and the cost of each batch"
