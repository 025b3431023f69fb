"""The audit trail as people read it: browse and filter it, export it, verify its chains and
signatures, and sign its periodic review (A11-9, A11-12, P11-10e).

The ledger below records; this app reads for a person, so it is where permissions and site
scoping meet the trail. It sits above accounts (who may read what) and below every app that shows
a record's history (docs/architecture.md)."""
