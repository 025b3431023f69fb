"""Forms of the release pages; each signing form asks for the re-authentication fields."""

from __future__ import annotations

from django import forms

from pocare.ledger.forms import SignatureFieldsMixin


class CommentSignForm(SignatureFieldsMixin):
    """Review by exception or QC review: what was reviewed and found, signed (reviewed)."""

    comment = forms.CharField(label="What you reviewed and found", max_length=4000,
                              widget=forms.Textarea(attrs={"rows": 3}))
    field_order = ["comment", "username", "password"]


class DecisionForm(SignatureFieldsMixin):
    """The QP's decision: certify (released) or reject, with the reason and a confirmation."""

    decision = forms.ChoiceField(
        label="Decision", choices=[("", "Choose: certify or reject…"), ("certify", "Certify for release"),
                                   ("reject", "Reject")],
        error_messages={"required": "Choose the decision: certify for release, or reject."})
    reason = forms.CharField(label="Reason", max_length=4000, widget=forms.Textarea(attrs={"rows": 3}))
    confirm = forms.BooleanField(
        label="I understand this decision is final and signed with my name", required=True,
        error_messages={"required": "Confirm the decision: certification or rejection cannot be undone."})
    field_order = ["decision", "reason", "username", "password", "confirm"]


class OosRequestForm(SignatureFieldsMixin):
    clinical_justification = forms.CharField(
        label="Clinical justification", max_length=4000, widget=forms.Textarea(attrs={"rows": 3}),
        help_text="Why not administering the product is an immediate significant hazard to the patient.")
    field_order = ["clinical_justification", "username", "password"]


class OosEvaluateForm(SignatureFieldsMixin):
    risk_evaluation = forms.CharField(label="Risk evaluation", max_length=4000,
                                      widget=forms.Textarea(attrs={"rows": 3}))
    field_order = ["risk_evaluation", "username", "password"]


class OosAcceptForm(SignatureFieldsMixin):
    statement = forms.CharField(label="Acceptance statement", max_length=4000,
                                widget=forms.Textarea(attrs={"rows": 3}))
    field_order = ["statement", "username", "password"]


class OosNotifyForm(forms.Form):
    recipient = forms.ChoiceField(label="Notified",
                                  choices=[("sponsor", "Sponsor"), ("authority", "Competent authority")])
    reference = forms.CharField(label="Reference of the notice", max_length=200)
