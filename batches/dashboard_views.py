"""The home page: production and sync health of the user's accounts at a glance, and the retry
of failed batches it offers."""

from typing import Any

from django.contrib import messages
from django.contrib.auth.decorators import permission_required
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.template.defaultfilters import pluralize
from django.utils import timezone
from django.views.decorators.http import require_GET, require_POST

from batches import selectors
from batches.dashboard import (
    COUNT_CAP,
    chart,
    needing_attention,
    oldest_waiting,
    production,
    recent_changes,
    status_counts,
)
from batches.forms import BulkRetryForm
from batches.history import Via, changes_via
from batches.models import ProductionBatch, SyncStatus
from batches.services import retry_batch
from portal.accounts import request_accounts

ATTENTION_SHOWN = 20  # of each of the failed and the refused batches, newest first
CHANGES_SHOWN = 10


@require_GET
def dashboard(request: HttpRequest) -> HttpResponse:
    form = BulkRetryForm(None, ProductionBatch.objects.none())
    return render(request, "batches/dashboard.html", _context(request, form))


@permission_required("batches.change_productionbatch", raise_exception=True)
@require_POST
@changes_via(Via.FORM)
def batch_retry_many(request: HttpRequest) -> HttpResponse:
    """Retry the failed batches chosen on the home page, as each one's Retry button would."""
    form = BulkRetryForm(request.POST, selectors.visible_batches(request.user))
    if not form.is_valid():
        return render(request, "batches/dashboard.html", _context(request, form))
    chosen = form.cleaned_data["batches"]
    retried = sum(retry_batch(batch, request.user) for batch in chosen)
    if retried:
        messages.success(
            request,
            f"{retried} batch{pluralize(retried, 'es')} will be sent to Isometric again "
            "in a moment.",
        )
    if unchanged := len(chosen) - retried:
        messages.info(
            request,
            f"{unchanged} of the chosen batches {pluralize(unchanged, 'was,were')} not waiting "
            "for a retry any more.",
        )
    return redirect("dashboard")


def _context(request: HttpRequest, retry_form: BulkRetryForm) -> dict[str, Any]:
    accounts = request_accounts(request)
    context: dict[str, Any] = {"accounts": accounts, "retry_form": retry_form}
    if not request.user.has_perm("batches.view_productionbatch"):
        return context
    ids = [account.pk for account in accounts]
    batches = selectors.visible_batches(request.user)
    now = timezone.now()
    produced = production(ids, now)
    return context | {
        "now": now,
        "production": produced,
        "chart": chart(produced),
        "counts": status_counts(batches),
        "count_cap": COUNT_CAP,
        "oldest_waiting": oldest_waiting(batches),
        "failed": needing_attention(batches, SyncStatus.FAILED, ATTENTION_SHOWN),
        "rejected": needing_attention(batches, SyncStatus.REJECTED, ATTENTION_SHOWN),
        "changes": recent_changes(batches, CHANGES_SHOWN),
    }
