from django.conf import settings
from django.contrib import messages
from django.contrib.auth.decorators import permission_required
from django.core.exceptions import PermissionDenied
from django.http import HttpRequest, HttpResponse, HttpResponseBadRequest, StreamingHttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.views.decorators.http import require_GET, require_http_methods, require_POST
from django.views.decorators.vary import vary_on_headers

from batches import exports, remote, selectors, sync
from batches.forms import (
    BatchExportForm,
    BatchFilterForm,
    BatchStatusesForm,
    ProductionBatchForm,
    RemoteBatchesForm,
    VoidForm,
    differences,
    generate_supplier_reference_id,
    initial_from_last,
    rejection_by_label,
)
from batches.history import Via, changes_via
from batches.models import ProductionBatch
from batches.services import (
    BatchNotEditable,
    earlier_submission,
    retry_batch,
    save_batch,
    void_batch,
)
from portal.accounts import accounts_of, request_accounts
from portal.http import HtmxHttpRequest

TIMELINE_SHOWN = 20  # changes and attempts on a batch's page, newest first


@permission_required("batches.view_productionbatch", raise_exception=True)
@vary_on_headers("HX-Request")
def batch_list(request: HtmxHttpRequest) -> HttpResponse:
    filter_form = BatchFilterForm(request.GET, accounts_of(request.user))
    filter_form.is_valid()
    if filter_form.stale_page:
        messages.warning(request, _STALE_PAGE)
    visible = selectors.visible_batches(request.user)
    batches = selectors.filtered_batches(visible, filter_form.filters())
    sort = filter_form.chosen_sort()
    page = selectors.batch_page(
        batches,
        settings.BATCH_PAGE_SIZE,
        sort,
        after=filter_form.cleaned_data.get("after"),
        before=filter_form.cleaned_data.get("before"),
    )
    context = {
        "filter_form": filter_form,
        "page": page,
        "query": _query_without_cursor(request),
        "sort": sort,
        "headers": _sort_headers(request, sort),
        "total": selectors.capped_count(batches),
        "count_cap": selectors.COUNT_CAP,
    }
    if _wants_fragment(request):
        return render(request, "batches/list.html#results", context)
    context.update(
        counts=selectors.attention_counts(visible),
        last_pulled_at=selectors.last_pulled_at(request_accounts(request)),
    )
    return render(request, "batches/list.html", context)


def _sort_headers(request: HttpRequest, sort: selectors.Sort) -> dict[str, dict[str, str]]:
    """Each sortable column's header: the list's address sorted by it (from the first page),
    and how the list is sorted by it now ("ascending", "descending" or "")."""
    headers = {}
    for column in selectors.SortColumn:
        query = request.GET.copy()
        for key in ("after", "before"):
            query.pop(key, None)
        query["sort"] = sort.by(column)
        sorted_now = ""
        if column == sort.column:
            sorted_now = "descending" if sort.descending else "ascending"
        headers[column.value] = {"query": query.urlencode(), "sorted": sorted_now}
    return headers


@permission_required("batches.view_productionbatch", raise_exception=True)
@require_GET
def batch_export(request: HttpRequest) -> HttpResponse | StreamingHttpResponse:
    """The list, searched and filtered as its page is, as a CSV or XLSX file."""
    form = BatchExportForm(request.GET, accounts_of(request.user))
    if not form.is_valid() and "format" in form.errors:
        return HttpResponseBadRequest(form.errors["format"].as_text(), content_type="text/plain")
    batches = selectors.filtered_batches(selectors.visible_batches(request.user), form.filters())
    return exports.download(batches, form.cleaned_data["format"], form.chosen_sort())


@permission_required("batches.view_productionbatch", raise_exception=True)
@vary_on_headers("HX-Request")
def remote_batch_list(request: HtmxHttpRequest) -> HttpResponse:
    """The batches Isometric holds for one of the user's accounts, live, a page at a time."""
    form = RemoteBatchesForm(request.GET, request_accounts(request))
    form.is_valid()
    if form.stale_page:
        messages.warning(request, _STALE_PAGE)
    account = form.chosen_account()
    page, problem = None, None
    if account:
        try:
            page = remote.remote_page(account, form.page_request())
        except remote.RemoteUnavailable as exc:
            problem = exc
    context = {
        "form": form,
        "account": account,
        "page": page,
        "problem": problem,
        "query": _query_without_cursor(request),
    }
    if _wants_fragment(request):
        return render(request, "batches/remote.html#results", context)
    return render(request, "batches/remote.html", context)


def _wants_fragment(request: HtmxHttpRequest) -> bool:
    """An HTMX swap gets the fragment; restoring history after a cache miss needs the page."""
    return bool(request.htmx) and not request.htmx.history_restore_request


def _query_without_cursor(request: HttpRequest) -> str:
    query = request.GET.copy()
    for key in ("after", "before"):
        query.pop(key, None)
    return query.urlencode()


@permission_required("batches.view_productionbatch", raise_exception=True)
@vary_on_headers("HX-Request")
def batch_detail(request: HtmxHttpRequest, pk: int) -> HttpResponse:
    batch = get_object_or_404(
        selectors.visible_batches(request.user)
        .select_related("facility", "created_by", "account")
        .prefetch_related("feedstock_types"),
        pk=pk,
    )
    timeline = selectors.batch_timeline(batch, TIMELINE_SHOWN)
    context = {
        "batch": batch,
        "timeline": timeline,
        # Their HTTP statuses, times and Isometric's own words, for the technical details.
        "attempts": [entry for entry in timeline if isinstance(entry, selectors.Attempt)],
        "rejection": rejection_by_label(batch),
    }
    template = "batches/detail.html#batch" if _wants_fragment(request) else "batches/detail.html"
    return render(request, template, context)


@permission_required("batches.view_productionbatch", raise_exception=True)
@require_GET
def batch_statuses(request: HttpRequest) -> HttpResponse:
    """The status badges of a list page's batches in motion, asked for by the page every few
    seconds in one request: each badge swaps itself in by its id, and the page's poller is
    replaced by one watching the batches still in motion, or by nothing once all have settled."""
    form = BatchStatusesForm(request.GET)
    if not form.is_valid():
        return HttpResponseBadRequest(form.errors["ids"].as_text(), content_type="text/plain")
    batches = selectors.watched_batches(request.user, form.cleaned_data["ids"])
    context = {"batches": batches, "in_motion": selectors.in_motion(batches)}
    return render(request, "batches/list.html#statuses", context)


@permission_required("batches.change_productionbatch", raise_exception=True)
@require_POST
def batch_retry(request: HttpRequest, pk: int) -> HttpResponse:
    batch = get_object_or_404(selectors.visible_batches(request.user), pk=pk)
    if retry_batch(batch, request.user):
        messages.success(request, "The batch will be sent to Isometric again in a moment.")
    else:
        messages.info(request, "This batch is not waiting for a retry any more.")
    return redirect(batch)


@permission_required("batches.view_productionbatch", raise_exception=True)
@require_POST
def refresh_from_isometric(request: HttpRequest) -> HttpResponse:
    if sync.request_pull(accounts_of(request.user)):
        messages.success(
            request,
            "Fetching your batches from Isometric. New and changed ones appear here within "
            "a minute or so.",
        )
    else:
        messages.warning(request, "You are in no Isometric account, so there is nothing to fetch.")
    return redirect("batches:list")


@permission_required("batches.add_productionbatch", raise_exception=True)
@require_http_methods(["GET", "POST"])
@changes_via(Via.FORM)
def batch_create(request: HttpRequest) -> HttpResponse:
    accounts = accounts_of(request.user)
    if not accounts.exists():
        raise PermissionDenied(_NO_ACCOUNT)
    reference = request.GET.get("reference", "")
    if request.method == "GET" and not reference:
        # The form's address carries its generated reference, so going Back shows the same
        # one even when the browser fetches the page anew and restores only what was typed.
        query = request.GET.copy()
        query["reference"] = generate_supplier_reference_id(None)
        return redirect(f"{request.path}?{query.urlencode()}")
    if request.method == "POST":
        form = ProductionBatchForm(request.POST, accounts=accounts)
        if form.is_valid() and (batch := save_batch(form, request.user)):
            messages.success(request, f"Batch {batch.supplier_reference_id} saved.")
            return redirect(batch)
        if earlier := earlier_submission(form, request.user):
            messages.info(request, "This batch was already recorded; here it is.")
            return redirect(earlier)
    # The last batch only for the page: a saved form has no use for it.
    last = selectors.last_recorded(request.user)
    copy = request.GET.get("copy") == "last" and last is not None
    if request.method == "GET":
        initial = {**initial_from_last(last, copy), "supplier_reference_id": reference}
        form = ProductionBatchForm(accounts=accounts, initial=initial)
    return render(request, "batches/form.html", {"form": form, "last_batch": last, "copied": copy})


@permission_required("batches.change_productionbatch", raise_exception=True)
@require_http_methods(["GET", "POST"])
@changes_via(Via.FORM)
def batch_edit(request: HttpRequest, pk: int) -> HttpResponse:
    """Edit a batch in any state. A batch Isometric holds is corrected: the operator sees what
    changes and confirms before it is saved."""
    batch = get_object_or_404(selectors.visible_batches(request.user), pk=pk)
    if not batch.is_editable:
        messages.error(request, _NOT_EDITABLE)
        return redirect(batch)
    is_correction = batch.is_correction
    form = ProductionBatchForm(
        request.POST or None, instance=batch, accounts=accounts_of(request.user)
    )
    # "back" from the preview of a correction: the form again, with what the operator typed.
    if request.method == "POST" and "back" not in request.POST and form.is_valid():
        if form.needs_confirmed_correction(request.POST):
            context = {"form": form, "batch": batch, "differences": differences(form)}
            return render(request, "batches/correction.html", context)
        try:
            saved = save_batch(form, request.user)
        except BatchNotEditable:
            messages.error(request, _NOT_EDITABLE)
            return redirect(batch)
        if saved:
            messages.success(request, _saved_message(saved, is_correction, form.changes_batch()))
            return redirect(saved)
    return render(request, "batches/form.html", {"form": form, "batch": batch})


def _saved_message(batch: ProductionBatch, is_correction: bool, changed: bool) -> str:
    if not changed:
        return f"Batch {batch.supplier_reference_id}: nothing changed."
    if is_correction:
        return (
            f"Batch {batch.supplier_reference_id} corrected. The portal replaces it in "
            "Isometric in a moment: this page shows each step."
        )
    return f"Batch {batch.supplier_reference_id} updated."


@permission_required("batches.void_productionbatch", raise_exception=True)
@require_http_methods(["GET", "POST"])
@changes_via(Via.FORM)
def batch_void(request: HttpRequest, pk: int) -> HttpResponse:
    batch = get_object_or_404(selectors.visible_batches(request.user), pk=pk)
    if batch.void_reason:
        messages.info(request, "This batch is voided already.")
        return redirect(batch)
    form = VoidForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        if void_batch(batch, form.cleaned_data["reason"]):
            messages.success(request, f"Batch {batch.supplier_reference_id} voided.")
        else:
            messages.info(request, "This batch is voided already.")
        return redirect(batch)
    return render(request, "batches/void.html", {"form": form, "batch": batch})


_STALE_PAGE = "That page link is not valid any more, so here is the first page."
_NO_ACCOUNT = (
    "You are not a member of any Isometric account, so there is nowhere to record a batch. "
    "Ask an admin to add you to your organisation's account."
)
_NOT_EDITABLE = "This batch is voided, so it can no longer be changed."
