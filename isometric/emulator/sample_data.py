"""What a fresh emulator holds, and production batches "created elsewhere" for seeding."""

import random
from datetime import datetime, timedelta

from isometric.emulator.credentials import make_access_token
from isometric.emulator.formats import new_id, random_code
from isometric.emulator.validation import NewBatch

ORGANISATION_NAME = "Emulated Biochar Co"
FACILITY_NAMES = ("Kiln North", "Kiln South", "Pyrolysis Line 3")
FEEDSTOCK_TYPES = (
    ("Pine wood chips", "FT-PINE"),
    ("Rice husk", "FT-RICE"),
    ("Walnut shells", "FT-WALNUT"),
    ("Corn stover", "FT-CORN"),
)


def new_state(now: datetime) -> dict[str, object]:
    """The state of a new emulator, in the shape of its state file."""
    organisation = {"id": new_id("org"), "name": ORGANISATION_NAME}
    return {
        "organisation": organisation,
        "access_token": make_access_token(organisation["id"], now),
        "facilities": [{"id": new_id("fcl"), "name": name} for name in FACILITY_NAMES],
        "feedstock_types": [
            {"id": new_id("ftt"), "name": name, "supplier_reference_id": reference}
            for name, reference in FEEDSTOCK_TYPES
        ],
        "production_batches": [],
    }


def random_batch(
    rng: random.Random, facility_ids: list[str], feedstock_type_ids: list[str], now: datetime
) -> tuple[NewBatch, datetime]:
    """A plausible batch from the last six months, and when it was uploaded."""
    started_at = now - timedelta(days=rng.uniform(1, 180))
    ended_at = started_at + timedelta(hours=rng.uniform(4, 48))
    uploaded_at = min(now, ended_at + timedelta(hours=rng.uniform(1, 72)))
    batch = NewBatch(
        facility_id=rng.choice(facility_ids),
        feedstock_type_ids=rng.sample(feedstock_type_ids, k=rng.randint(1, 2)),
        supplier_reference_id=f"EXT-{random_code(10)}",
        kind="biochar",
        started_at=started_at,
        ended_at=ended_at,
        mass={
            "magnitude": round(rng.uniform(0.5, 25), 3),
            "unit": "tonne",
            "standard_deviation": round(rng.uniform(0.01, 0.2), 3),
        },
        display_name=None,
    )
    return batch, uploaded_at
