"""Shared building blocks below every POCare app: input bounds for forms and the API, the bounded
YAML reader, and safe rendering of stored values. Imports no pocare app (lint_domain keeps it so)."""
