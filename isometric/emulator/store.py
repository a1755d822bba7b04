"""Everything the emulated organisation holds, kept consistent under one lock.

With a state file, the whole state is written after every change (to a temporary file, then
renamed over the old one, so a crash never leaves half a file) and read back at start.
"""

import json
import os
import tempfile
import threading
from bisect import insort
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from isometric.emulator.formats import new_id, utc_timestamp
from isometric.emulator.paging import Key, PageRequest, PageSlice, slice_page
from isometric.emulator.sample_data import new_state
from isometric.emulator.validation import NewBatch, Problems

type Record = dict[str, Any]

DEFAULT_DELETE_REFUSAL = "This production batch is part of a removal and cannot be deleted"


class DuplicateSupplierReference(Exception):
    pass


class DeleteRefused(Exception):
    """Isometric will not delete the batch; the message is its reason."""


def _batch_key(batch: Record) -> Key:
    return batch["uploaded_at"], batch["id"]


def _feedstock_key(feedstock_type: Record) -> Key:
    return feedstock_type["name"], feedstock_type["id"]


class Store:
    def __init__(self, state: Record, state_file: Path | None) -> None:
        self._lock = threading.Lock()
        self._state_file = state_file
        self.organisation: Record = state["organisation"]
        self.access_token: str = state["access_token"]
        self._facilities: dict[str, Record] = {item["id"]: item for item in state["facilities"]}
        self._feedstock_types: dict[str, Record] = {
            item["id"]: item for item in state["feedstock_types"]
        }
        self._batches: dict[str, Record] = {}
        self._ids_by_reference: dict[str, str] = {}
        self._batch_keys: list[Key] = []
        for batch in state["production_batches"]:
            self._insert(batch)
        # Older state files have neither.
        self._delete_refusals: dict[str, str] = state.get("delete_refusals", {})
        self._deleted_references: set[str] = set(state.get("deleted_supplier_reference_ids", []))

    @classmethod
    def open(cls, state_file: Path | None) -> tuple["Store", bool]:
        """The store, and whether it was new (no state file to read)."""
        if state_file is not None and state_file.exists():
            return cls(json.loads(state_file.read_text()), state_file), False
        store = cls(new_state(datetime.now(UTC)), state_file)
        with store._lock:
            store._save()
        return store, True

    def set_access_token(self, token: str) -> None:
        with self._lock:
            self.access_token = token
            self._save()

    def facilities(self) -> list[Record]:
        with self._lock:
            return list(self._facilities.values())

    def feedstock_types(self) -> list[Record]:
        with self._lock:
            return list(self._feedstock_types.values())

    def add_facility(self, facility_id: str, name: str) -> Record:
        with self._lock:
            facility = self._facilities.setdefault(facility_id, {"id": facility_id, "name": name})
            self._save()
            return facility

    def add_feedstock_type(self, feedstock_type_id: str, name: str) -> Record:
        with self._lock:
            feedstock_type = self._feedstock_types.setdefault(
                feedstock_type_id,
                {"id": feedstock_type_id, "name": name, "supplier_reference_id": None},
            )
            self._save()
            return feedstock_type

    def unknown_ids(self, batch: NewBatch) -> Problems:
        """The facility and feedstock types must exist, as on Isometric (refused with 422)."""
        problems = Problems()
        with self._lock:
            if batch.facility_id not in self._facilities:
                problems.add(
                    ("body", "facility_id"), "value_error", "Facility not found", batch.facility_id
                )
            for index, feedstock_type_id in enumerate(batch.feedstock_type_ids):
                if feedstock_type_id not in self._feedstock_types:
                    loc = ("body", "feedstock_type_ids", index)
                    problems.add(loc, "value_error", "Feedstock type not found", feedstock_type_id)
        return problems

    def create(
        self, batch: NewBatch, uploaded_at: datetime, *, reuse_deleted_references: bool
    ) -> Record:
        [record] = self.create_many(
            [(batch, uploaded_at)], reuse_deleted_references=reuse_deleted_references
        )
        return record

    def create_many(
        self, batches: Sequence[tuple[NewBatch, datetime]], *, reuse_deleted_references: bool
    ) -> list[Record]:
        """Store all the batches, with one write of the state file, or none of them. Without
        `reuse_deleted_references`, the references of deleted batches count as taken."""
        references = [batch.supplier_reference_id for batch, _ in batches]
        with self._lock:
            taken = [ref for ref in references if self._taken(ref, reuse_deleted_references)]
            if taken or len(set(references)) < len(references):
                raise DuplicateSupplierReference(", ".join(taken))
            records = [self._record(batch, uploaded_at) for batch, uploaded_at in batches]
            for record in records:
                self._insert(record)
            self._save()
            return records

    def _taken(self, reference: str, reuse_deleted_references: bool) -> bool:
        """The caller holds the lock."""
        if reference in self._ids_by_reference:
            return True
        return not reuse_deleted_references and reference in self._deleted_references

    def _record(self, batch: NewBatch, uploaded_at: datetime) -> Record:
        return {
            "id": new_id("ptb"),
            "facility_id": batch.facility_id,
            "feedstock_type_ids": batch.feedstock_type_ids,
            "supplier_reference_id": batch.supplier_reference_id,
            "kind": batch.kind,
            "started_at": utc_timestamp(batch.started_at),
            "ended_at": utc_timestamp(batch.ended_at),
            "uploaded_at": utc_timestamp(uploaded_at),
            "display_name": batch.display_name or self._display_name(batch),
            "mass": batch.mass,
        }

    def _display_name(self, batch: NewBatch) -> str:
        facility = self._facilities[batch.facility_id]
        return f"{facility['name']} {batch.started_at:%Y-%m-%d}"

    def _insert(self, batch: Record) -> None:
        self._batches[batch["id"]] = batch
        self._ids_by_reference[batch["supplier_reference_id"]] = batch["id"]
        insort(self._batch_keys, _batch_key(batch))

    def get(self, batch_id: str) -> Record | None:
        with self._lock:
            return self._batches.get(batch_id)

    def delete(self, batch_id: str, *, honour_refusal: bool) -> bool:
        """False when there is no such batch. With `honour_refusal`, a batch given a delete
        refusal stays and DeleteRefused is raised."""
        with self._lock:
            batch = self._batches.get(batch_id)
            if batch is None:
                return False
            if honour_refusal and batch_id in self._delete_refusals:
                raise DeleteRefused(self._delete_refusals[batch_id])
            del self._batches[batch_id]
            del self._ids_by_reference[batch["supplier_reference_id"]]
            self._batch_keys.remove(_batch_key(batch))
            self._delete_refusals.pop(batch_id, None)
            self._deleted_references.add(batch["supplier_reference_id"])
            self._save()
            return True

    def set_delete_refusal(self, batch_id: str, reason: str | None) -> bool:
        """From now on refuse to delete the batch with `reason`, or (None) no longer refuse;
        False when there is no such batch."""
        with self._lock:
            if batch_id not in self._batches:
                return False
            if reason is None:
                self._delete_refusals.pop(batch_id, None)
            else:
                self._delete_refusals[batch_id] = reason
            self._save()
            return True

    def clear_batches(self) -> None:
        with self._lock:
            self._batches.clear()
            self._ids_by_reference.clear()
            self._batch_keys.clear()
            self._delete_refusals.clear()
            self._deleted_references.clear()
            self._save()

    def batches(self) -> list[Record]:
        """Every batch, in list order."""
        with self._lock:
            return [self._batches[batch_id] for _, batch_id in self._batch_keys]

    def page_of_batches(
        self, request: PageRequest, supplier_reference_id: str | None
    ) -> tuple[list[Record], PageSlice]:
        with self._lock:
            keys = self._batch_keys
            if supplier_reference_id is not None:
                batch_id = self._ids_by_reference.get(supplier_reference_id)
                keys = [] if batch_id is None else [_batch_key(self._batches[batch_id])]
            page = slice_page(keys, request)
            return [self._batches[batch_id] for _, batch_id in page.keys], page

    def page_of_feedstock_types(
        self, request: PageRequest, supplier_reference_id: str | None
    ) -> tuple[list[Record], PageSlice]:
        with self._lock:
            matching = [
                item
                for item in self._feedstock_types.values()
                if supplier_reference_id is None
                or item["supplier_reference_id"] == supplier_reference_id
            ]
            page = slice_page(sorted(_feedstock_key(item) for item in matching), request)
            return [self._feedstock_types[item_id] for _, item_id in page.keys], page

    def _save(self) -> None:
        """Write the state file; the caller holds the lock."""
        if self._state_file is None:
            return
        state = {
            "organisation": self.organisation,
            "access_token": self.access_token,
            "facilities": list(self._facilities.values()),
            "feedstock_types": list(self._feedstock_types.values()),
            "production_batches": [self._batches[batch_id] for _, batch_id in self._batch_keys],
            "delete_refusals": self._delete_refusals,
            "deleted_supplier_reference_ids": sorted(self._deleted_references),
        }
        directory = self._state_file.parent
        with tempfile.NamedTemporaryFile(
            "w", dir=directory, prefix=f".{self._state_file.name}.", delete=False
        ) as temporary:
            json.dump(state, temporary, indent=1)
        os.replace(temporary.name, self._state_file)
