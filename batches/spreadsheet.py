"""The columns of a batch in a spreadsheet: the import template's, which an export repeats (plus
where the batch stands), so that an export can be edited and imported again."""

from dataclasses import dataclass


@dataclass(frozen=True)
class Column:
    key: str  # the batch form's field name, or the export's own
    header: str  # what the file's first row says


# The import template's columns, in order: the batch form's fields. Facilities and feedstock
# types are named by their name or their Isometric id; several feedstock types are separated
# by FEEDSTOCK_SEPARATOR.
TEMPLATE_COLUMNS = (
    Column("supplier_reference_id", "Supplier reference"),
    Column("display_name", "Display name"),
    Column("facility", "Facility"),
    Column("feedstock_types", "Feedstock types"),
    Column("started_at", "Production started"),
    Column("ended_at", "Production ended"),
    Column("mass_magnitude", "Mass"),
    Column("mass_unit", "Unit"),
    Column("mass_standard_deviation", "Standard deviation"),
)
# What an export adds after them: where each batch stands. An import ignores these columns.
EXPORT_COLUMNS = (
    *TEMPLATE_COLUMNS,
    Column("account", "Isometric account"),
    Column("sync_status", "Status"),
    Column("remote_id", "Isometric id"),
    Column("uploaded_at", "Uploaded to Isometric"),
)
FEEDSTOCK_SEPARATOR = ";"
