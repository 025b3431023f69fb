"""Materials, approved suppliers, stock by site, depot and lot, and its movements (docs/supply.md)."""
