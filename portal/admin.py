from typing import Any

from auditlog.models import LogEntry
from django import forms
from django.contrib import admin, messages
from django.contrib.auth import get_user_model
from django.db.models import Q, QuerySet
from django.http import HttpRequest, HttpResponse
from django.template.response import TemplateResponse
from django.utils.decorators import method_decorator
from django.views.decorators.debug import sensitive_post_parameters, sensitive_variables

from portal.accounts import accounts_of, check_connection
from portal.history import account_history
from portal.models import ConnectionStatus, Environment, IsometricAccount

SECRET_FIELDS = ("client_secret", "access_token")
HISTORY_SHOWN = 100  # changes on an account's history page, newest first
admin.site.site_header = admin.site.site_title = "Batch Portal admin"
# Log entries are shown with the row they belong to, to those who may see it; auditlog's own
# list would show every organisation's.
admin.site.unregister(LogEntry)


def _secret_input() -> forms.PasswordInput:
    # new-password: browsers must not fill in the admin's own login password here.
    return forms.PasswordInput(render_value=False, attrs={"autocomplete": "new-password"})


class IsometricAccountForm(forms.ModelForm):
    """Secrets are write-only: the form never renders them back. A blank field keeps the stored
    value; its help text shows a masked hint of which one that is."""

    client_secret = forms.CharField(required=False, strip=True, widget=_secret_input())
    access_token = forms.CharField(
        required=False,
        strip=True,
        widget=_secret_input(),
        help_text="The organisation's JWT; it expires after a year.",
    )

    class Meta:
        model = IsometricAccount
        fields = ["name", "environment", "base_url", "request_rate_limit", "members"]

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        stored = self.instance.pk is not None
        for name, hint in (
            ("client_secret", self.instance.client_secret_hint),
            ("access_token", self.instance.access_token_hint),
        ):
            field = self.fields[name]
            field.required = not stored
            if stored:
                field.help_text = (
                    f"Stored: {hint}. Leave blank to keep it. {field.help_text}".rstrip()
                )

    @sensitive_variables()
    def clean(self) -> dict[str, Any]:
        cleaned = super().clean() or {}
        if cleaned.get("environment") == Environment.CUSTOM and not cleaned.get("base_url"):
            self.add_error("base_url", "A custom environment needs its base URL.")
        return cleaned

    @sensitive_variables()
    def save(self, commit: bool = True) -> IsometricAccount:
        account: IsometricAccount = super().save(commit=False)
        account.set_credentials(
            client_secret=self.cleaned_data["client_secret"],
            access_token=self.cleaned_data["access_token"],
        )
        if commit:
            account.save()
            self.save_m2m()
        return account


@admin.register(IsometricAccount)
class IsometricAccountAdmin(admin.ModelAdmin):
    form = IsometricAccountForm
    list_display = [
        "name",
        "environment",
        "organisation_name",
        "connection_status",
        "token_expires_at",
        "checked_at",
    ]
    readonly_fields = [
        "organisation_name",
        "organisation_id",
        "token_expires_at",
        "connection_status",
        "connection_message",
        "checked_at",
    ]
    fieldsets = [
        (None, {"fields": ["name", "environment", "base_url", "request_rate_limit"]}),
        ("Credentials", {"fields": list(SECRET_FIELDS)}),
        ("Who uses it", {"fields": ["members"]}),
        ("Connection", {"fields": [*readonly_fields]}),
    ]
    filter_horizontal = ["members"]
    actions = ["test_connection"]

    @method_decorator(sensitive_post_parameters(*SECRET_FIELDS))
    def changeform_view(self, request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
        return super().changeform_view(request, *args, **kwargs)

    def get_queryset(self, request: HttpRequest) -> QuerySet[IsometricAccount]:
        """A credential admin manages the accounts they are a member of; a superuser, all."""
        return accounts_of(request.user)

    def formfield_for_manytomany(
        self, db_field: Any, request: HttpRequest, **kwargs: Any
    ) -> forms.ModelMultipleChoiceField | None:
        if db_field.name == "members" and not request.user.is_superuser:
            # The people of the admin's organisations, and those in none yet: not another
            # organisation's.
            kwargs["queryset"] = (
                get_user_model()
                .objects.filter(
                    Q(isometric_accounts=None) | Q(isometric_accounts__in=accounts_of(request.user))
                )
                .distinct()
            )
        return super().formfield_for_manytomany(db_field, request, **kwargs)

    def save_related(self, request: HttpRequest, form: Any, formsets: Any, change: bool) -> None:
        super().save_related(request, form, formsets, change)
        if not change and not request.user.is_superuser:
            # Otherwise the account would vanish from its creator's list once saved.
            form.instance.members.add(request.user)

    def history_view(
        self, request: HttpRequest, object_id: str, extra_context: dict[str, Any] | None = None
    ) -> HttpResponse:
        # The account's own history, not only the admin's: changes from the command line too,
        # with the values changed (of a secret, when it was replaced).
        response = super().history_view(request, object_id, extra_context)
        if isinstance(response, TemplateResponse) and response.context_data:
            account = response.context_data["object"]
            response.context_data["changes"] = account_history(account, HISTORY_SHOWN)
        return response

    @admin.action(description="Test connection", permissions=["change"])
    def test_connection(self, request: HttpRequest, queryset: QuerySet[IsometricAccount]) -> None:
        for account in queryset:
            check_connection(account)
            level = (
                messages.SUCCESS
                if account.connection_status == ConnectionStatus.OK
                else messages.ERROR
            )
            self.message_user(request, f"{account}: {account.connection_message}", level)
