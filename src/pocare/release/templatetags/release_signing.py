"""Template tags of the release app: the review-by-exception signing form, shown on the review page
itself (``manufacturing/review.html``) as on the release page. The batch record sits below release
and cannot import its forms; its template asks for this tag by name."""

from __future__ import annotations

from typing import Any

from django import template

from pocare.accounts import selectors as access
from pocare.accounts.roles import Perm
from pocare.ledger.signing import signing_needs_user_id
from pocare.release import forms, selectors

register = template.Library()

#: Stages in which the review by exception may (still) be signed: a new review replaces a stale one.
_OPEN_STAGES = frozenset({"exceptions", "qc_review", "certification"})


@register.inclusion_tag("release/_exceptions_form.html", takes_context=True)
def exceptions_sign_form(context: Any, batch: Any, form: Any = None) -> dict[str, Any]:
    """The signing form of the review by exception of ``batch`` for the person viewing, when they may
    sign it now (EXCEPTIONS_REVIEW at the batch's site, not read-only, the batch awaiting release)."""
    request = context["request"]
    user = request.user
    may = (access.has_perm(user, Perm.EXCEPTIONS_REVIEW, site_id=batch.site_id) and not access.is_read_only(user)
           and selectors.stage(batch) in _OPEN_STAGES)
    if may and form is None:
        form = forms.CommentSignForm(ask_user_id=signing_needs_user_id(request), prefix="exc")
    return {"may_sign": may, "form": form, "batch": batch, "next": request.path,
            "csrf_token": context.get("csrf_token")}
