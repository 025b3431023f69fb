"""The patient's pathway: referral, eligibility, consent, booking of a chain of slots, follow-up, and
the hospital's systems in FHIR R5 (DESIGN.md; docs/patients.md)."""
