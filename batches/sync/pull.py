"""Pull: mirror an account's batches in Isometric here, so those created elsewhere (Certify's UI,
another tool) are browsable and searchable too, and those deleted there are marked so."""

import logging
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from itertools import batched
from typing import Any

from auditlog.models import LogEntry
from django.conf import settings
from django.db import transaction
from django.db.models import F, Q, QuerySet
from django.utils import timezone

from batches.history import Via, batch_log_entries, changes_via, log_batch_changes
from batches.models import (
    Facility,
    FeedstockType,
    ProductionBatch,
    SyncStatus,
    is_isometric_id,
    unmirrorable,
)
from isometric.client import Client
from isometric.errors import IsometricError, NotYourTurn
from isometric.models import ProductionBatch as RemoteBatch
from portal.models import ConnectionStatus, IsometricAccount
from portal.pace import AccountPace

log = logging.getLogger(__name__)

# A pull writes Isometric's values over a batch only where they are the truth: a batch with work
# under way (a push, a correction, a void) is the worker's, and a voided one stays voided.
ISOMETRICS_COPY_COUNTS = (SyncStatus.SYNCED, SyncStatus.DELETED)
# Batches not sent that Isometric may hold all the same (a lost answer), found by reference.
ADOPTABLE = (SyncStatus.REJECTED, SyncStatus.FAILED)
# The through table of ProductionBatch.feedstock_types.
FeedstockLink = ProductionBatch.feedstock_types.through
FEEDSTOCKS = "feedstock_types"


@dataclass
class PullResult:
    new: int = 0
    updated: int = 0
    unchanged: int = 0
    deleted: int = 0
    # Why each remote batch that could not be mirrored was skipped.
    skipped: list[str] = field(default_factory=list)

    def __str__(self) -> str:
        summary = (
            f"{self.new} new, {self.updated} updated, {self.unchanged} unchanged, "
            f"{self.deleted} deleted in Isometric"
        )
        if self.skipped:
            summary += f"; {len(self.skipped)} skipped, e.g. {self.skipped[0]}"
        return summary


class PullFailed(Exception):
    """The pull stopped part-way (what was written stays, nothing is marked deleted). The
    message, recorded on the account, says why."""


class PullPostponed(PullFailed):
    """The account's next turn to call Isometric is further off than a pull waits: nothing was
    refused, so nothing is recorded on the account, and its pull is due again at that turn."""


@changes_via(Via.PULL)
def pull(account: IsometricAccount) -> PullResult:
    """Page through all of the account's batches in Isometric and upsert them here by remote id
    (adopting a local batch with the same supplier reference), a page per transaction. A remote
    batch that cannot be mirrored is skipped and reported; anything that stops the pull raises
    PullFailed. Either way the outcome is recorded on the account, but for PullPostponed."""
    started = timezone.now()
    try:
        mirror = _pull_pages(account, started)
    except NotYourTurn as exc:
        due_at = timezone.now() + timedelta(seconds=exc.retry_after)
        IsometricAccount.objects.filter(pk=account.pk).update(pull_due_at=due_at)
        raise PullPostponed(str(exc)) from exc
    except Exception as exc:
        reason = _failure(exc)
        _record(account, f"The last refresh failed: {reason}")
        raise PullFailed(reason) from exc
    mirror.result.deleted = _mark_deleted(account, mirror.seen, started)
    _record(account, str(mirror.result))
    return mirror.result


def _pull_pages(account: IsometricAccount, started: datetime) -> "_Mirror":
    with account.client(AccountPace(account)) as client:
        refresh_feedstock_types(client, account)
        mirror = _Mirror(account, started)
        for page in client.iter_production_batch_pages(read_ahead=True):
            mirror.result.skipped.extend(page.unreadable)
            mirror.upsert(page.nodes)
    return mirror


def _failure(exc: Exception) -> str:
    if isinstance(exc, IsometricError):  # UnreadableCredentials too
        return str(exc)
    log.exception("pull failed unexpectedly")
    return f"unexpected error in the portal ({type(exc).__name__}); see its log"


def request_pull(accounts: QuerySet[IsometricAccount]) -> int:
    """Have the worker pull these accounts as soon as it can."""
    return accounts.update(pull_due_at=timezone.now())


def pull_next_due() -> bool:
    """Pull the account whose pull is the most overdue, if any is due; whether one was. Each of
    a worker's pullers calls it in turn, so an account whose pull is slow or fails holds up one
    puller, never the other accounts."""
    account = claim_due_pull()
    if account is None:
        return False
    try:
        pull(account)
    except PullPostponed as exc:
        log.info("pull %s postponed: %s", account.name, exc)
    except PullFailed:
        log.warning("pull %s failed; the other accounts are pulled all the same", account.name)
    return True


def claim_due_pull() -> IsometricAccount | None:
    """The account whose pull is the most overdue, this worker's until its next interval, so
    that no other worker pulls it meanwhile."""
    now = timezone.now()
    next_due = now + timedelta(seconds=settings.SYNC_PULL_INTERVAL)
    due = (
        IsometricAccount.objects.filter(Q(pull_due_at__lte=now) | Q(pull_due_at=None))
        .exclude(connection_status=ConnectionStatus.REJECTED)
        .order_by(F("pull_due_at").asc(nulls_first=True), "pk")
    )
    for account in due[:5]:
        claimed = IsometricAccount.objects.filter(
            pk=account.pk, pull_due_at=account.pull_due_at
        ).update(pull_due_at=next_due)
        if claimed:
            account.pull_due_at = next_due
            return account
    return None


def refresh_feedstock_types(client: Client, account: IsometricAccount) -> None:
    """Learn the account's feedstock types in Isometric (new ones, new names), so the form
    offers them. One whose id is not an id is left out."""
    known = {item.isometric_id: item for item in account.feedstock_types.all()}
    new, renamed = [], []
    for remote in client.iter_feedstock_types():
        if not is_isometric_id(remote.id):
            continue
        name = remote.name[:200]
        local = known.get(remote.id)
        if local is None:
            new.append(FeedstockType(account=account, isometric_id=remote.id, name=name))
        elif local.name != name:
            local.name = name
            renamed.append(local)
    FeedstockType.objects.bulk_create(new, ignore_conflicts=True)
    FeedstockType.objects.bulk_update(renamed, ["name"])


class _Mirror:
    """Upserts pages of remote batches into one account, counting what it does."""

    def __init__(self, account: IsometricAccount, now: datetime) -> None:
        self.account = account
        self.now = now
        self.result = PullResult()
        self.seen: set[str] = set()
        self.facility_pks = dict(account.facilities.values_list("isometric_id", "pk"))
        self.feedstock_pks = dict(account.feedstock_types.values_list("isometric_id", "pk"))

    @transaction.atomic
    def upsert(self, nodes: list[RemoteBatch]) -> None:
        nodes = self._mirrorable(nodes)
        self._know_facilities_and_feedstocks(nodes)
        by_remote_id, by_reference = self._local_batches(nodes)
        links = _feedstock_links([*by_remote_id.values(), *by_reference.values()])
        new: list[tuple[ProductionBatch, RemoteBatch]] = []
        changed: list[ProductionBatch] = []
        changed_fields = {"updated_at"}
        relinked: dict[int, set[int]] = {}
        # For the batches' history: each updated batch's changed fields, (old, new).
        updates: list[tuple[ProductionBatch, dict[str, tuple[Any, Any]]]] = []
        for node in nodes:
            feedstocks = {self.feedstock_pks[ftt] for ftt in node.feedstock_type_ids}
            batch = by_remote_id.get(node.id) or by_reference.get(node.supplier_reference_id or "")
            fields = ProductionBatch.fields_from_api(node, self.facility_pks[node.facility_id])
            if batch is None:
                new.append((ProductionBatch(account=self.account, **fields), node))
                continue
            fields_changed = _apply(batch, fields)
            changed_fields |= fields_changed.keys()
            if feedstocks != links.get(batch.pk, set()):
                relinked[batch.pk] = feedstocks
                fields_changed[FEEDSTOCKS] = (links.get(batch.pk, set()), feedstocks)
            if fields_changed.keys() - {FEEDSTOCKS}:
                batch.updated_at = self.now
                changed.append(batch)
            if fields_changed:
                self.result.updated += 1
                updates.append((batch, fields_changed))
            else:
                self.result.unchanged += 1
        created = ProductionBatch.objects.bulk_create([batch for batch, _ in new])
        ProductionBatch.objects.bulk_update(changed, sorted(changed_fields))
        for batch, node in zip(created, (node for _, node in new), strict=True):
            relinked[batch.pk] = {self.feedstock_pks[ftt] for ftt in node.feedstock_type_ids}
        _relink(relinked)
        self.result.new += len(created)
        self._log(created, updates, relinked)

    def _log(
        self,
        created: list[ProductionBatch],
        updates: list[tuple[ProductionBatch, dict[str, tuple[Any, Any]]]],
        relinked: dict[int, set[int]],
    ) -> None:
        """Add the page's new and changed batches to their history, in one insert."""
        new = [(batch, {FEEDSTOCKS: ((), relinked[batch.pk])}) for batch in created]
        LogEntry.objects.bulk_create(
            [
                *batch_log_entries(new, Via.PULL, created=True),
                *batch_log_entries(updates, Via.PULL),
            ]
        )

    def _mirrorable(self, nodes: list[RemoteBatch]) -> list[RemoteBatch]:
        """The nodes that can be stored here; the others are skipped with the reason."""
        mirrorable, ids = [], set()
        for node in nodes:
            problem = unmirrorable(node) or ("listed twice" if node.id in ids else "")
            self.seen.add(node.id)
            if problem:
                self.result.skipped.append(f"{node.id[:40]}: {problem}")
                continue
            ids.add(node.id)
            mirrorable.append(node)
        return self._without_taken_references(mirrorable)

    def _without_taken_references(self, nodes: list[RemoteBatch]) -> list[RemoteBatch]:
        """A supplier reference is unique in the account: a remote batch cannot be stored under a
        reference another batch here has (one with another Isometric id, or one not yet sent
        when another batch already has this one's id), or an earlier node of the page took.
        Those of batches with work under way are left to the worker, unreported."""
        references = {node.supplier_reference_id for node in nodes if node.supplier_reference_id}
        by_reference = ProductionBatch.objects.with_references(self.account.pk, references)
        by_id = self.account.batches.filter(remote_id__in=[node.id for node in nodes])
        columns = ("supplier_reference_id", "remote_id", "sync_status", "replaced_remote_id")
        # Two queries, so that each uses its index (an OR of them would not on SQLite).
        rows = list({*by_reference.values_list(*columns), *by_id.values_list(*columns)})
        holders: dict[str, str | None] = {row[0]: row[1] for row in rows}
        held_ids = {row[1] for row in rows}
        # A batch a correction deleted may still be listed: never adopted back.
        the_workers = {replaced for *_, replaced in rows if replaced} | {
            remote_id or reference
            for reference, remote_id, status, _ in rows
            if status not in (ADOPTABLE if remote_id is None else ISOMETRICS_COPY_COUNTS)
        }
        kept = []
        for node in nodes:
            reference = node.supplier_reference_id or ""
            holder = holders.get(reference, node.id) if reference else node.id
            if holder is None and node.id not in held_ids:
                holder = node.id  # a batch not yet sent, which this remote batch is: adopted
            if holder != node.id:
                whose = f"the batch {holder}'s" if holder else "a batch's not yet sent"
                self.result.skipped.append(f"{node.id}: its supplier reference is already {whose}")
                continue
            if node.id in the_workers or reference in the_workers:
                continue
            if reference:
                holders[reference] = node.id
            kept.append(node)
        return kept

    def _know_facilities_and_feedstocks(self, nodes: list[RemoteBatch]) -> None:
        """Isometric has no facility endpoint, and a batch may name a feedstock type it no
        longer lists: such ids are added to the account under their id until an admin names
        them."""
        self._add_missing(Facility, self.facility_pks, {node.facility_id for node in nodes})
        self._add_missing(
            FeedstockType,
            self.feedstock_pks,
            {ftt for node in nodes for ftt in node.feedstock_type_ids},
        )

    def _add_missing[M: (Facility, FeedstockType)](
        self, model: type[M], known: dict[str, int], ids: set[str]
    ) -> None:
        """Add the ids the account does not know yet, named by their id, to it and to `known`."""
        missing = ids - known.keys()
        if not missing:
            return
        model.objects.bulk_create(
            [model(account=self.account, isometric_id=id_, name=id_) for id_ in missing],
            ignore_conflicts=True,
        )
        added = model.objects.filter(account=self.account, isometric_id__in=missing)
        known.update(added.values_list("isometric_id", "pk"))

    def _local_batches(
        self, nodes: list[RemoteBatch]
    ) -> tuple[dict[str, ProductionBatch], dict[str, ProductionBatch]]:
        """The local copies of these remote batches, by remote id; and the account's batches
        not yet in Isometric with the same supplier references, by reference."""
        ids = [node.id for node in nodes]
        by_remote_id = {
            batch.remote_id: batch
            # Locked: an operator's edit saved meanwhile waits for the page, then corrects it.
            for batch in self.account.batches.select_for_update().filter(
                remote_id__in=ids, sync_status__in=ISOMETRICS_COPY_COUNTS
            )
            if batch.remote_id
        }
        references = [
            node.supplier_reference_id
            for node in nodes
            if node.id not in by_remote_id and node.supplier_reference_id
        ]
        if not references:
            return by_remote_id, {}
        unsent = (
            ProductionBatch.objects.with_references(self.account.pk, references)
            .select_for_update()
            .filter(remote_id=None, sync_status__in=ADOPTABLE)
        )
        return by_remote_id, {batch.supplier_reference_id: batch for batch in unsent}


def _apply(batch: ProductionBatch, fields: dict[str, Any]) -> dict[str, tuple[Any, Any]]:
    """Set the fields' values on the batch; the old and new values of those that changed."""
    changed = {}
    for name, value in fields.items():
        old = getattr(batch, name)
        if old != value:
            setattr(batch, name, value)
            changed[name] = (old, value)
    return changed


def _feedstock_links(batches: list[ProductionBatch]) -> dict[int, set[int]]:
    links: dict[int, set[int]] = {}
    rows = FeedstockLink.objects.filter(productionbatch_id__in=[batch.pk for batch in batches])
    for batch_pk, feedstock_pk in rows.values_list("productionbatch_id", "feedstocktype_id"):
        links.setdefault(batch_pk, set()).add(feedstock_pk)
    return links


def _relink(links: dict[int, set[int]]) -> None:
    FeedstockLink.objects.filter(productionbatch_id__in=list(links)).delete()
    FeedstockLink.objects.bulk_create(
        FeedstockLink(productionbatch_id=batch_pk, feedstocktype_id=feedstock_pk)
        for batch_pk, feedstocks in links.items()
        for feedstock_pk in feedstocks
    )


def _mark_deleted(account: IsometricAccount, seen: set[str], started: datetime) -> int:
    """Mark the account's mirrored batches that Isometric no longer lists. A batch synced while
    the pull ran may be missing from pages already read, so only older rows count."""
    mirrored = ProductionBatch.objects.filter(
        account=account,
        remote_id__isnull=False,
        sync_status=SyncStatus.SYNCED,
        updated_at__lt=started,
    ).values_list("pk", "remote_id")
    gone = [pk for pk, remote_id in mirrored.iterator(chunk_size=2000) if remote_id not in seen]
    now = timezone.now()
    marked = 0
    for chunk in batched(gone, 500):
        # Those still synced by now (an operator may have saved one meanwhile), and only they
        # get a history entry.
        with transaction.atomic():
            still_synced = list(
                ProductionBatch.objects.select_for_update()
                .filter(pk__in=chunk, sync_status=SyncStatus.SYNCED)
                .values_list("pk", flat=True)
            )
            ProductionBatch.objects.filter(pk__in=still_synced).update(
                sync_status=SyncStatus.DELETED, deleted_in_isometric_at=now, updated_at=now
            )
            log_batch_changes(
                [(pk, {"deleted_in_isometric_at": (None, now)}) for pk in still_synced], Via.PULL
            )
        marked += len(still_synced)
    return marked


def _record(account: IsometricAccount, summary: str) -> None:
    log.info("pull %s: %s", account.name, summary)
    IsometricAccount.objects.filter(pk=account.pk).update(
        last_pulled_at=timezone.now(), last_pull_summary=summary[:300]
    )
