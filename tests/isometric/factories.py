"""Valid production batches for the emulator's facilities and feedstock types."""

from datetime import UTC, datetime, timedelta

from isometric.emulator import Emulator
from isometric.models import Mass, NewProductionBatch

STARTED_AT = datetime(2025, 3, 1, 6, 0, tzinfo=UTC)


def new_batch(
    emulator: Emulator, supplier_reference_id: str = "REF-1", display_name: str | None = None
) -> NewProductionBatch:
    return NewProductionBatch(
        facility_id=emulator.facility_ids[0],
        feedstock_type_ids=emulator.feedstock_type_ids[:2],
        supplier_reference_id=supplier_reference_id,
        started_at=STARTED_AT,
        ended_at=STARTED_AT + timedelta(hours=20),
        mass=Mass(magnitude=12.5, unit="tonne", standard_deviation=0.4),
        display_name=display_name,
    )


def batch_body(emulator: Emulator, supplier_reference_id: str = "REF-1") -> dict[str, object]:
    """The JSON a client would POST."""
    return new_batch(emulator, supplier_reference_id).to_json()
