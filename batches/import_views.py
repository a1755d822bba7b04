"""Bulk import pages: upload, the check's progress and preview, the import, the files."""

from django.contrib import messages
from django.contrib.auth.decorators import permission_required
from django.core.exceptions import PermissionDenied
from django.http import HttpRequest, HttpResponse, HttpResponseBase
from django.shortcuts import get_object_or_404, redirect, render
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from batches import imports, spreadsheet
from batches.forms import ImportForm, is_row_id
from batches.models import BatchImport
from batches.spreadsheet import TEMPLATE_COLUMNS
from portal.accounts import accounts_of
from portal.http import HtmxHttpRequest

HISTORY_SHOWN = 50
REJECTED_SHOWN = 200  # on the page; the download has them all


@permission_required("batches.add_productionbatch", raise_exception=True)
@require_http_methods(["GET", "POST"])
def import_upload(request: HttpRequest) -> HttpResponse:
    accounts = accounts_of(request.user)
    if not accounts.exists():
        raise PermissionDenied("You are not a member of any Isometric account.")
    form = ImportForm(request.POST or None, request.FILES or None, accounts=accounts)
    if request.method == "POST" and form.is_valid():
        batch_import = imports.upload(
            form.chosen_account(),
            request.user,  # type: ignore[arg-type]
            form.cleaned_data["file"],
            form.cleaned_data["confirm_unusual"],
        )
        return redirect(batch_import)
    history = (
        BatchImport.objects.filter(account__in=accounts)
        .select_related("account", "created_by")
        .defer("content")[:HISTORY_SHOWN]
    )
    return render(request, "batches/imports.html", {"form": form, "history": history})


def _visible_import(request: HttpRequest, pk: int) -> BatchImport:
    return get_object_or_404(
        BatchImport.objects.filter(account__in=accounts_of(request.user))
        .select_related("account", "created_by")
        .defer("content"),
        pk=pk,
    )


@permission_required("batches.add_productionbatch", raise_exception=True)
@require_GET
def import_detail(request: HtmxHttpRequest, pk: int) -> HttpResponse:
    """The check's progress, then its preview; then the import's progress and its outcome. The
    page polls its own status fragment while the worker is at it."""
    batch_import = _visible_import(request, pk)
    rejected = batch_import.rejected_rows.all()[:REJECTED_SHOWN]
    context = {"import": batch_import, "rejected": rejected}
    template = "batches/import.html#status" if request.htmx else "batches/import.html"
    return render(request, template, context)


@permission_required("batches.add_productionbatch", raise_exception=True)
@require_POST
def import_start(request: HttpRequest, pk: int) -> HttpResponse:
    batch_import = _visible_import(request, pk)
    if not imports.start_import(batch_import):
        messages.info(request, "This file is not waiting to be imported.")
    return redirect(batch_import)


@permission_required("batches.add_productionbatch", raise_exception=True)
@require_GET
def import_rejected(request: HttpRequest, pk: int) -> HttpResponseBase:
    """The rows not imported, as a CSV with a reason column, ready to fix and upload again."""
    batch_import = _visible_import(request, pk)
    headers = [*(column.header for column in TEMPLATE_COLUMNS), "Reason"]
    rows = imports.rejected_rows(batch_import)
    return spreadsheet.csv_download(f"rejected-rows-{batch_import.pk}.csv", headers, rows)


@permission_required("batches.add_productionbatch", raise_exception=True)
@require_GET
def import_template(request: HttpRequest) -> HttpResponseBase:
    """The template to fill in: the columns and one example row of the user's account."""
    accounts = accounts_of(request.user)
    chosen = request.GET.get("account", "")
    account = (is_row_id(chosen) and accounts.filter(pk=chosen).first()) or accounts.first()
    if account is None:
        raise PermissionDenied("You are not a member of any Isometric account.")
    headers = [column.header for column in TEMPLATE_COLUMNS]
    example = [imports.example_row(account)]
    if request.GET.get("format") == "xlsx":
        return spreadsheet.xlsx_download("batches-template.xlsx", headers, example)
    return spreadsheet.csv_download("batches-template.csv", headers, example)
