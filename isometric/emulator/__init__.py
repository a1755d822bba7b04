"""A local stand-in for the Isometric API over real HTTP, for tests, demos and benchmarks.

Run it with `python -m isometric.emulator --seed 40` (see --help), or in-process:

    with Emulator(seed=10) as emulator:
        client = Client(emulator.base_url, emulator.client_secret, emulator.access_token)

Under /mrv/v0 it serves what the portal uses: POST, GET (list, with the supplier_reference_id
filter), GET one and DELETE /production_batches; GET /feedstock_types; GET /organisation. Both
credentials are required, bodies and paging parameters are validated as the contract says (422 in
FastAPI's shape), and paging follows Relay with opaque cursors.

Control endpoint, for tests and demos (no credentials; JSON in and out):

    GET    /_emulator/stats        {"requests": {"POST /production_batches": {"200": 5, "lost": 1}},
                                    "created_by_supplier_reference_id": {"REF-1": 1},
                                    "connections_opened": 2}
    GET    /_emulator/config       the current settings
    POST   /_emulator/config       {"option": value, ...}: any field of faults.Settings (e.g.
                                   "latency_ms", "error_503_rate", "duplicate_status"), plus
                                   "random_seed" and "next_faults" (e.g. ["lost_response"]).
                                   "reuse_deleted_references" (default true; the published spec
                                   leaves it open): false keeps the supplier_reference_id of a
                                   deleted batch reserved, so a new batch with it is refused as a
                                   duplicate ("duplicate_status"). A deleted batch is never
                                   listed by the filter. Command line: --no-reference-reuse
    POST   /_emulator/reset        back to the start (see Emulator.reset)
    POST   /_emulator/seed         {"count": n}: n batches "created elsewhere"
    POST   /_emulator/facilities   {"id": optional, "name": optional}: accept another facility
    DELETE /_emulator/production_batches/{id}   delete a batch as if in Certify's UI (even
                                   one whose deletion the API refuses)
    PUT    /_emulator/production_batches/{id}/delete_refusal
                                   {"reason": optional}: until cleared or reset, the API's
                                   DELETE of this batch answers 422 ({"detail": [{"loc":
                                   ["path", "id"], "msg": reason, "type": "value_error", ...}]})
                                   and the batch stays. Default reason: "This production batch
                                   is part of a removal and cannot be deleted". 404 if no batch
    DELETE /_emulator/production_batches/{id}/delete_refusal
                                   clear it (204): the API deletes the batch again; 404 if no batch

Faults: "error_500", "error_503", "rate_limited", "lost_response" (the request is handled, then
the connection closes without an answer) and "reset" (the connection is reset before anything
is handled). Each has a rate (probability per API request) and can be queued with next_faults.
"""

from isometric.emulator.credentials import DEFAULT_CLIENT_SECRET
from isometric.emulator.faults import Fault, Settings
from isometric.emulator.server import Emulator

__all__ = ["DEFAULT_CLIENT_SECRET", "Emulator", "Fault", "Settings"]
