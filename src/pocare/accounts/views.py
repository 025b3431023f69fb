"""Log in and out, passwords, and the people pages of Control Site QA."""

from __future__ import annotations

from django.contrib import messages
from django.contrib.auth import update_session_auth_hash
from django.contrib.auth.tokens import default_token_generator
from django.core.exceptions import ValidationError
from django.db.models import Prefetch
from django.http import Http404, HttpRequest, HttpResponse
from django.http.response import HttpResponseBase
from django.shortcuts import get_object_or_404, redirect, render
from django.utils import timezone
from django.utils.encoding import force_str
from django.utils.http import url_has_allowed_host_and_scheme, urlsafe_base64_decode
from django.views.decorators.http import require_http_methods, require_POST

from pocare.accounts import oidc, selectors, services
from pocare.accounts.decorators import public, requires, signed_in
from pocare.accounts.filters import PERSON_COLUMNS, TOKEN_COLUMNS, PersonFilter, TokenFilter
from pocare.accounts.forms import (
    GrantForm,
    IdentityLinkForm,
    LoginForm,
    PasswordChangeForm,
    PasswordSetForm,
    ReasonForm,
    UserCreateForm,
)
from pocare.accounts.models import User
from pocare.accounts.roles import Perm
from pocare.core.forms import apply_validation_error
from pocare.core.listing import render_list


@public
@require_http_methods(["GET", "POST"])
def login_view(request: HttpRequest) -> HttpResponse:
    form = LoginForm(request.POST or None)
    next_url = request.POST.get("next") or request.GET.get("next") or ""
    if request.method == "POST" and form.is_valid():
        try:
            services.session_login(request=request, username=form.cleaned_data["username"],
                                   password=form.cleaned_data["password"])
        except services.AccessRefused as exc:
            form.add_error(None, str(exc))
        else:
            if url_has_allowed_host_and_scheme(next_url, allowed_hosts={request.get_host()}):
                return redirect(next_url)
            return redirect("web:home")
    providers = _providers()
    response = render(request, "accounts/login.html", {"form": form, "next": next_url, "providers": providers},
                      status=400 if form.errors else 200)
    if providers:
        # "Sign in with …" posts here and is redirected to the provider: browsers hold that redirect
        # to the page's form-action, so the providers' origins join 'self' on this page only.
        response._csp_update = {"form-action": oidc.form_action_origins(providers)}  # type: ignore[attr-defined]
    return response


def _providers() -> list[oidc.Provider]:
    return list(oidc.providers().values())


def _provider_or_404(key: str) -> oidc.Provider:
    provider = oidc.providers().get(key)
    if provider is None:
        raise Http404("No such sign-on provider.")
    return provider


@public
@require_POST
def oidc_start(request: HttpRequest, key: str) -> HttpResponse:
    """"Sign in with <hospital>": to the provider, with state, nonce and PKCE kept in the session."""
    provider = _provider_or_404(key)
    try:
        return redirect(oidc.authorization_url(request, provider, request.POST.get("next", "")))
    except oidc.SignOnRefused as exc:
        return render(request, "accounts/sign_on_refused.html", {"provider": provider, "message": str(exc)},
                      status=exc.status)


@public
@require_http_methods(["GET"])
def oidc_callback(request: HttpRequest, key: str) -> HttpResponse:
    """The provider's answer (the redirect URI registered there). A bare visit records nothing."""
    provider = _provider_or_404(key)
    if not ({"code", "state", "error"} & set(request.GET)):
        return render(request, "accounts/sign_on_refused.html", {
            "provider": provider,
            "message": "This address receives the answer of your hospital's sign-in: start from the login page.",
        }, status=400)
    try:
        _user, next_url = oidc.callback(request, provider)
    except oidc.SignOnRefused as exc:
        return render(request, "accounts/sign_on_refused.html", {"provider": provider, "message": str(exc)},
                      status=exc.status)
    if next_url and url_has_allowed_host_and_scheme(next_url, allowed_hosts={request.get_host()}):
        return redirect(next_url)
    return redirect("web:home")


@public
@require_POST
def logout_view(request: HttpRequest) -> HttpResponse:
    if request.user.is_authenticated:
        services.session_logout(request=request)
        messages.info(request, "You are logged out.")
    return redirect("accounts:login")


@signed_in
@require_http_methods(["GET", "POST"])
def password_change(request: HttpRequest) -> HttpResponse:
    form = PasswordChangeForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        try:
            assert isinstance(request.user, User)
            services.password_set(user=request.user, old_password=form.cleaned_data["old_password"],
                                  new_password=form.cleaned_data["new_password"])
        except ValidationError as exc:
            apply_validation_error(form, exc)
        else:
            update_session_auth_hash(request, request.user)
            messages.success(request, "Your password is changed.")
            return redirect("web:home")
    return render(request, "accounts/password_change.html", {"form": form}, status=400 if form.errors else 200)


@public
@require_http_methods(["GET", "POST"])
def password_set(request: HttpRequest, uidb64: str, token: str) -> HttpResponse:
    try:
        user = User.objects.get(pk=int(force_str(urlsafe_base64_decode(uidb64))), is_active=True)
    except (ValueError, TypeError, OverflowError, User.DoesNotExist):
        user = None
    if user is None or not default_token_generator.check_token(user, token):
        return render(request, "accounts/password_set.html", {"invalid": True}, status=400)
    form = PasswordSetForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        try:
            services.password_set(user=user, new_password=form.cleaned_data["new_password"])
        except ValidationError as exc:
            apply_validation_error(form, exc)
        else:
            messages.success(request, "Your password is set. Log in with it.")
            return redirect("accounts:login")
    return render(request, "accounts/password_set.html", {"form": form, "person": user},
                  status=400 if form.errors else 200)


@requires(Perm.ACCOUNTS_VIEW, write=Perm.ACCOUNTS_MANAGE)
@require_http_methods(["GET", "POST"])
def people(request: HttpRequest) -> HttpResponseBase:
    form = UserCreateForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        assert isinstance(request.user, User)
        try:
            person = services.user_create(actor=request.user, **form.cleaned_data)
        except ValidationError as exc:
            apply_validation_error(form, exc)
        else:
            messages.success(request, f"{person.printed_name} was created; a set-password link was e-mailed.")
            return redirect("accounts:person", pk=person.pk)
    # Each person's roles at the sites the viewer may see, not their roles elsewhere (docs/access.md).
    people = selectors.users_visible(request.user).prefetch_related(
        Prefetch("memberships", queryset=selectors.memberships_visible(request.user)))
    return render_list(request, "accounts/people.html", filterset_class=PersonFilter, queryset=people,
                       columns=PERSON_COLUMNS, name="people", context={"form": form},
                       status=400 if form.errors else 200)


@requires(Perm.ACCOUNTS_VIEW, write=Perm.ACCOUNTS_MANAGE)
@require_http_methods(["GET", "POST"])
def person(request: HttpRequest, pk: int) -> HttpResponse:
    person = get_object_or_404(selectors.users_visible(request.user), pk=pk)
    actor = request.user
    assert isinstance(actor, User)
    reason_form = ReasonForm(request.POST or None)
    grant_form = GrantForm(request.POST or None) if request.POST.get("action") == "grant" else GrantForm()
    configured = oidc.providers()
    link_form = IdentityLinkForm(request.POST if request.POST.get("action") == "link" else None,
                                 providers={p.key: p.name for p in configured.values()})
    if request.method == "POST":
        action = request.POST.get("action", "")
        try:
            if action == "grant":
                if grant_form.is_valid():
                    services.membership_grant(actor=actor, user=person, **grant_form.cleaned_data)
                    messages.success(request, "Role granted.")
                    return redirect("accounts:person", pk=pk)
            elif action == "link":
                if link_form.is_valid():
                    provider = configured[link_form.cleaned_data["provider"]]
                    services.identity_link(actor=actor, user=person, provider_key=provider.key,
                                           issuer=provider.issuer, subject=link_form.cleaned_data["subject"],
                                           reason=link_form.cleaned_data["reason"])
                    messages.success(request, f"Linked to {provider.name}; the link grants no role.")
                    return redirect("accounts:person", pk=pk)
            elif reason_form.is_valid():
                reason = reason_form.cleaned_data["reason"]
                if action == "unlock":
                    services.user_unlock(actor=actor, user=person, reason=reason)
                elif action == "deactivate":
                    services.user_deactivate(actor=actor, user=person, reason=reason)
                elif action == "reset":
                    services.password_reset_issue(actor=actor, user=person, reason=reason)
                elif action == "revoke":
                    membership = get_object_or_404(selectors.memberships_visible(actor).filter(user=person),
                                                   pk=request.POST.get("membership", "0"))
                    services.membership_revoke(actor=actor, membership=membership, reason=reason)
                elif action == "unlink":
                    identity = get_object_or_404(person.external_identities.all(),
                                                 pk=request.POST.get("identity", "0"))
                    services.identity_revoke(actor=actor, identity=identity, reason=reason)
                else:
                    raise Http404("Unknown action")
                messages.success(request, "Done; the change is in the audit trail.")
                return redirect("accounts:person", pk=pk)
        except ValidationError as exc:
            apply_validation_error({"grant": grant_form, "link": link_form}.get(action, reason_form), exc)
    context = {
        "person": person,
        "memberships": selectors.memberships_visible(actor).filter(user=person)
        .select_related("granted_by", "revoked_by").order_by("-granted_at"),
        "reason_form": reason_form if request.POST.get("action") not in {"grant", "link"} else ReasonForm(),
        "grant_form": grant_form,
        "link_form": link_form,
        "providers": configured,
        "identities": person.external_identities.select_related("linked_by", "revoked_by"),
        "can_manage": selectors.has_perm(actor, Perm.ACCOUNTS_MANAGE) and not selectors.is_read_only(actor),
        "pauses": selectors.sign_in_pauses(person),
    }
    errors = bool(reason_form.errors or grant_form.errors or link_form.errors) and request.method == "POST"
    return render(request, "accounts/person.html", context, status=400 if errors else 200)


@signed_in
@require_http_methods(["GET", "POST"])
def tokens(request: HttpRequest) -> HttpResponseBase:
    """"My tokens": a person's API tokens (Control Site QA: everyone's), with their last use; revoke one."""
    actor = request.user
    assert isinstance(actor, User)
    visible = selectors.tokens_visible(actor)
    form = ReasonForm(request.POST or None)
    if request.method == "POST":
        token = get_object_or_404(visible, pk=request.POST.get("token", "0"))
        if form.is_valid():
            try:
                services.token_revoke(actor=actor, token=token, reason=form.cleaned_data["reason"])
            except ValidationError as exc:
                apply_validation_error(form, exc)
            else:
                messages.success(request, f"Token {token.prefix}… is revoked; the change is in the audit trail.")
                return redirect("accounts:tokens")
    context = {"everyone": selectors.has_perm(actor, Perm.ACCOUNTS_MANAGE), "form": form, "now": timezone.now()}
    return render_list(request, "accounts/tokens.html", filterset_class=TokenFilter,
                       queryset=visible.select_related("user"), columns=TOKEN_COLUMNS, name="tokens",
                       context=context, status=400 if form.errors else 200)
