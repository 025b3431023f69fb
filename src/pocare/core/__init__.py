"""Shared building blocks below every POCare app: input bounds for forms and the API, the bounded
YAML reader, safe rendering of stored values, form and API error handling, the site-scope session
key. Imports no pocare app (lint_domain and the import contracts keep it so)."""
