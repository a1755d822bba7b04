"""The emulator's API, spoken to directly over HTTP: does it behave as the contract says?"""

import base64
import json
import re
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
import requests

from isometric.emulator import Emulator
from tests.isometric.factories import batch_body

ID_PATTERN = re.compile(r"^ptb_[0-9A-HJKMNP-TV-Z]{16}$")


@pytest.fixture
def api(emulator: Emulator) -> Iterator[requests.Session]:
    with requests.Session() as session:
        session.headers["X-Client-Secret"] = emulator.client_secret
        session.headers["Authorization"] = f"Bearer {emulator.access_token}"
        yield session


def post(emulator: Emulator, api: requests.Session, body: object) -> requests.Response:
    return api.post(f"{emulator.base_url}/production_batches", json=body)


def list_batches(emulator: Emulator, api: requests.Session, **params: Any) -> requests.Response:
    return api.get(f"{emulator.base_url}/production_batches", params=params)


def problems(response: requests.Response) -> list[tuple[list[str | int], str, str]]:
    assert response.status_code == 422
    return [(item["loc"], item["type"], item["msg"]) for item in response.json()["detail"]]


# Credentials


def jwt(claims: dict[str, object]) -> str:
    def segment(value: dict[str, object]) -> str:
        return base64.urlsafe_b64encode(json.dumps(value).encode()).rstrip(b"=").decode()

    return f"{segment({'alg': 'HS256', 'typ': 'JWT'})}.{segment(claims)}.c2lnbmF0dXJl"


@pytest.mark.parametrize(
    ("secret", "authorization", "status"),
    [
        (None, "good", 401),
        ("wrong", "good", 401),
        ("good", None, 401),
        ("good", "Basic dXNlcjpwYXNz", 401),
        ("good", "Bearer not-a-jwt", 401),
        ("good", f"Bearer {jwt({'org': 'org_0000000000000000'})}", 403),
    ],
)
def test_both_credentials_are_required(
    emulator: Emulator, secret: str | None, authorization: str | None, status: int
) -> None:
    headers = {}
    if secret is not None:
        headers["X-Client-Secret"] = emulator.client_secret if secret == "good" else secret
    if authorization is not None:
        good = f"Bearer {emulator.access_token}"
        headers["Authorization"] = good if authorization == "good" else authorization

    response = requests.get(f"{emulator.base_url}/organisation", headers=headers)

    assert response.status_code == status
    assert isinstance(response.json()["detail"], str)
    assert emulator.stats()["requests"] == {"GET /organisation": {str(status): 1}}


def test_the_default_token_is_a_jwt_for_the_organisation_expiring_in_a_year(
    emulator: Emulator,
) -> None:
    header, payload, signature = emulator.access_token.split(".")
    claims = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))

    assert json.loads(base64.urlsafe_b64decode(header + "=="))["typ"] == "JWT"
    assert signature
    assert claims["org"] == emulator.organisation["id"]
    expires = datetime.fromtimestamp(claims["exp"], UTC)
    assert timedelta(days=360) < expires - datetime.now(UTC) <= timedelta(days=366)


# Creating


def test_create_answers_200_with_the_stored_batch(
    emulator: Emulator, api: requests.Session
) -> None:
    before = datetime.now(UTC)
    body = batch_body(emulator) | {"uploaded_at": "2001-01-01T00:00:00Z", "id": "ptb_mine"}

    response = post(emulator, api, body)

    assert response.status_code == 200
    batch = response.json()
    assert ID_PATTERN.match(batch["id"])
    assert before <= datetime.fromisoformat(batch["uploaded_at"]) <= datetime.now(UTC)
    assert batch["supplier_reference_id"] == "REF-1"
    assert batch["feedstock_type_ids"] == body["feedstock_type_ids"]
    assert batch["mass"] == {"magnitude": 12.5, "unit": "tonne", "standard_deviation": 0.4}
    assert batch["started_at"] == "2025-03-01T06:00:00.000000Z"
    assert emulator.production_batches() == [batch]


def test_the_display_name_is_generated_from_the_facility_when_absent(
    emulator: Emulator, api: requests.Session
) -> None:
    facility = emulator.facilities()[0]

    named = post(emulator, api, batch_body(emulator, "A") | {"display_name": "Mine"}).json()
    unnamed = post(emulator, api, batch_body(emulator, "B") | {"display_name": None}).json()

    assert named["display_name"] == "Mine"
    assert unnamed["display_name"] == f"{facility['name']} 2025-03-01"


def test_a_duplicate_supplier_reference_is_refused_with_409(
    emulator: Emulator, api: requests.Session
) -> None:
    post(emulator, api, batch_body(emulator, "REF-1"))

    response = post(emulator, api, batch_body(emulator, "REF-1"))

    assert response.status_code == 409
    assert "already exists" in response.json()["detail"]
    assert len(emulator.production_batches()) == 1


def test_a_duplicate_may_be_refused_with_422_instead(
    emulator: Emulator, api: requests.Session
) -> None:
    emulator.configure(duplicate_status=422)
    post(emulator, api, batch_body(emulator, "REF-1"))

    response = post(emulator, api, batch_body(emulator, "REF-1"))

    assert problems(response) == [
        (
            ["body", "supplier_reference_id"],
            "value_error",
            "A production batch with this supplier_reference_id already exists",
        )
    ]


def test_a_deleted_batch_frees_its_supplier_reference(
    emulator: Emulator, api: requests.Session
) -> None:
    first = post(emulator, api, batch_body(emulator, "REF-1")).json()

    deleted = api.delete(f"{emulator.base_url}/production_batches/{first['id']}")
    again = post(emulator, api, batch_body(emulator, "REF-1"))

    assert deleted.status_code == 204
    assert deleted.content == b""
    assert again.status_code == 200
    assert again.json()["id"] != first["id"]
    listed = list_batches(emulator, api, supplier_reference_id="REF-1").json()
    assert [node["id"] for node in listed["nodes"]] == [again.json()["id"]]


@pytest.mark.parametrize("duplicate_status", [409, 422])
def test_a_deleted_batch_may_keep_its_supplier_reference_reserved(
    emulator: Emulator, api: requests.Session, duplicate_status: int
) -> None:
    requests.post(
        f"{emulator.url}/_emulator/config",
        json={"reuse_deleted_references": False, "duplicate_status": duplicate_status},
    )
    first = post(emulator, api, batch_body(emulator, "REF-1")).json()
    duplicate = post(emulator, api, batch_body(emulator, "REF-1"))
    api.delete(f"{emulator.base_url}/production_batches/{first['id']}")

    again = post(emulator, api, batch_body(emulator, "REF-1"))
    listed = list_batches(emulator, api, supplier_reference_id="REF-1").json()
    other = post(emulator, api, batch_body(emulator, "REF-2"))

    assert (again.status_code, again.json()) == (duplicate_status, duplicate.json())
    assert (listed["nodes"], listed["total_count"]) == ([], 0)
    assert other.status_code == 200
    assert emulator.production_batches() == [other.json()]
    assert emulator.stats()["created_by_supplier_reference_id"] == {"REF-1": 1, "REF-2": 1}


def broken(emulator: Emulator, **changes: object) -> dict[str, object]:
    body = batch_body(emulator)
    body.update(changes)
    return {name: value for name, value in body.items() if value is not ...}


def broken_mass(**changes: object) -> dict[str, object]:
    mass: dict[str, object] = {"magnitude": 12.5, "unit": "tonne", "standard_deviation": 0.4}
    mass.update(changes)
    return {name: value for name, value in mass.items() if value is not ...}


FIELD_REQUIRED = "Field required"
BROKEN_FIELDS = [
    ({"facility_id": ...}, ["body", "facility_id"], "missing", FIELD_REQUIRED),
    ({"facility_id": "fcl_short"}, ["body", "facility_id"], "string_too_short", None),
    ({"facility_id": "fcl_" + "X" * 34}, ["body", "facility_id"], "string_too_long", None),
    ({"facility_id": 12345}, ["body", "facility_id"], "string_type", None),
    ({"feedstock_type_ids": ...}, ["body", "feedstock_type_ids"], "missing", FIELD_REQUIRED),
    (
        {"feedstock_type_ids": "ftt_1D7KZ1P761S0G7BN"},
        ["body", "feedstock_type_ids"],
        "list_type",
        None,
    ),
    (
        {"feedstock_type_ids": ["ftt_1"]},
        ["body", "feedstock_type_ids", 0],
        "string_too_short",
        None,
    ),
    ({"supplier_reference_id": ...}, ["body", "supplier_reference_id"], "missing", FIELD_REQUIRED),
    ({"supplier_reference_id": ""}, ["body", "supplier_reference_id"], "string_too_short", None),
    (
        {"supplier_reference_id": "R" * 101},
        ["body", "supplier_reference_id"],
        "string_too_long",
        None,
    ),
    ({"supplier_reference_id": None}, ["body", "supplier_reference_id"], "string_type", None),
    ({"kind": ...}, ["body", "kind"], "missing", FIELD_REQUIRED),
    ({"kind": "charcoal"}, ["body", "kind"], "enum", "Input should be 'biochar'"),
    ({"started_at": ...}, ["body", "started_at"], "missing", FIELD_REQUIRED),
    ({"started_at": "last Tuesday"}, ["body", "started_at"], "datetime_parsing", None),
    ({"ended_at": ...}, ["body", "ended_at"], "missing", FIELD_REQUIRED),
    ({"ended_at": 1706000000}, ["body", "ended_at"], "datetime_type", None),
    ({"mass": ...}, ["body", "mass"], "missing", FIELD_REQUIRED),
    ({"mass": 12.5}, ["body", "mass"], "model_type", None),
    (
        {"mass": broken_mass(magnitude=...)},
        ["body", "mass", "magnitude"],
        "missing",
        FIELD_REQUIRED,
    ),
    ({"mass": broken_mass(magnitude="lots")}, ["body", "mass", "magnitude"], "float_type", None),
    ({"mass": broken_mass(unit=...)}, ["body", "mass", "unit"], "missing", FIELD_REQUIRED),
    ({"mass": broken_mass(unit="")}, ["body", "mass", "unit"], "string_too_short", None),
    (
        {"mass": broken_mass(standard_deviation="small")},
        ["body", "mass", "standard_deviation"],
        "float_type",
        None,
    ),
    ({"display_name": ""}, ["body", "display_name"], "string_too_short", None),
    ({"display_name": "D" * 101}, ["body", "display_name"], "string_too_long", None),
    (
        {"facility_id": "fcl_0000000000000000"},
        ["body", "facility_id"],
        "value_error",
        "Facility not found",
    ),
    (
        {"feedstock_type_ids": ["ftt_0000000000000000"]},
        ["body", "feedstock_type_ids", 0],
        "value_error",
        "Feedstock type not found",
    ),
]


@pytest.mark.parametrize(("changes", "loc", "kind", "msg"), BROKEN_FIELDS)
def test_each_broken_field_is_refused_with_422(
    emulator: Emulator,
    api: requests.Session,
    changes: dict[str, object],
    loc: list[str | int],
    kind: str,
    msg: str | None,
) -> None:
    response = post(emulator, api, broken(emulator, **changes))

    [(found_loc, found_kind, found_msg)] = problems(response)
    assert (found_loc, found_kind) == (loc, kind)
    assert found_msg == msg if msg else found_msg
    assert emulator.production_batches() == []


@pytest.mark.parametrize(
    ("body", "loc", "kind"),
    [
        (b"", ["body"], "missing"),
        (b'{"facility_id": ', ["body", 16], "json_invalid"),
        (b'{"mass": {"magnitude": NaN}}', ["body", 0], "json_invalid"),
        (b"[1, 2]", ["body"], "model_attributes_type"),
    ],
)
def test_a_body_that_is_not_an_object_is_refused_with_422(
    emulator: Emulator, api: requests.Session, body: bytes, loc: list[str | int], kind: str
) -> None:
    response = api.post(
        f"{emulator.base_url}/production_batches",
        data=body,
        headers={"Content-Type": "application/json"},
    )

    assert [(found_loc, found_kind) for found_loc, found_kind, _ in problems(response)] == [
        (loc, kind)
    ]


def test_unknown_body_fields_are_ignored(emulator: Emulator, api: requests.Session) -> None:
    response = post(emulator, api, batch_body(emulator) | {"colour": "black"})

    assert response.status_code == 200
    assert "colour" not in response.json()


# Reading one


def test_get_one(emulator: Emulator, api: requests.Session) -> None:
    created = post(emulator, api, batch_body(emulator)).json()

    response = api.get(f"{emulator.base_url}/production_batches/{created['id']}")

    assert response.status_code == 200
    assert response.json() == created


def test_an_unknown_id_is_404(emulator: Emulator, api: requests.Session) -> None:
    url = f"{emulator.base_url}/production_batches/ptb_0000000000000000"

    assert api.get(url).status_code == 404
    assert api.delete(url).status_code == 404


def test_an_id_of_the_wrong_length_is_422(emulator: Emulator, api: requests.Session) -> None:
    response = api.get(f"{emulator.base_url}/production_batches/ptb_1")

    assert problems(response) == [
        (["path", "id"], "string_too_short", "String should have at least 20 characters")
    ]


# Listing


@pytest.mark.parametrize(
    ("params", "loc", "kind"),
    [
        ({"first": 0}, ["query", "first"], "greater_than"),
        ({"first": 51}, ["query", "first"], "less_than_equal"),
        ({"first": "ten"}, ["query", "first"], "int_parsing"),
        ({"last": 0}, ["query", "last"], "greater_than"),
        ({"last": 51}, ["query", "last"], "less_than_equal"),
        ({"first": 5, "last": 5}, ["query", "last"], "value_error"),
        ({"after": ""}, ["query", "after"], "string_too_short"),
        ({"after": "bm90IGEgY3Vyc29y"}, ["query", "after"], "value_error"),
        ({"before": "%%%"}, ["query", "before"], "value_error"),
        ({"supplier_reference_id": ""}, ["query", "supplier_reference_id"], "string_too_short"),
    ],
)
def test_bad_paging_parameters_are_refused_with_422(
    emulator: Emulator,
    api: requests.Session,
    params: dict[str, object],
    loc: list[str],
    kind: str,
) -> None:
    [(found_loc, found_kind, _)] = problems(list_batches(emulator, api, **params))

    assert (found_loc, found_kind) == (loc, kind)


def test_page_sizes_from_1_to_50_are_accepted(emulator: Emulator, api: requests.Session) -> None:
    emulator.add_production_batches(60)

    sizes = [len(list_batches(emulator, api, first=n).json()["nodes"]) for n in (1, 50)]
    default = list_batches(emulator, api).json()

    assert sizes == [1, 50]
    assert len(default["nodes"]) == 10


def test_a_cursor_from_another_list_is_refused(emulator: Emulator, api: requests.Session) -> None:
    feedstock_page = api.get(f"{emulator.base_url}/feedstock_types", params={"first": 1}).json()
    cursor = feedstock_page["page_info"]["end_cursor"]

    [(loc, kind, msg)] = problems(list_batches(emulator, api, after=cursor))

    assert (loc, kind, msg) == (["query", "after"], "value_error", "Invalid cursor")


def test_a_cursor_from_an_earlier_run_is_refused(emulator: Emulator, api: requests.Session) -> None:
    with Emulator(seed=5) as earlier, requests.Session() as session:
        session.headers["X-Client-Secret"] = earlier.client_secret
        session.headers["Authorization"] = f"Bearer {earlier.access_token}"
        page = session.get(f"{earlier.base_url}/production_batches", params={"first": 2})
        cursor = page.json()["page_info"]["end_cursor"]

    assert problems(list_batches(emulator, api, after=cursor))[0][0] == ["query", "after"]


def test_an_empty_list(emulator: Emulator, api: requests.Session) -> None:
    assert list_batches(emulator, api).json() == {
        "nodes": [],
        "page_info": {
            "has_previous_page": False,
            "start_cursor": None,
            "has_next_page": False,
            "end_cursor": None,
        },
        "total_count": 0,
    }


def test_total_count_respects_the_filter(emulator: Emulator, api: requests.Session) -> None:
    emulator.add_production_batches(8)
    post(emulator, api, batch_body(emulator, "REF-1"))

    found = list_batches(emulator, api, supplier_reference_id="REF-1").json()
    missing = list_batches(emulator, api, supplier_reference_id="REF-2").json()

    assert [node["supplier_reference_id"] for node in found["nodes"]] == ["REF-1"]
    assert found["total_count"] == 1
    assert missing["nodes"] == []
    assert missing["total_count"] == 0


def test_the_filter_can_be_ignored_like_old_api_versions(
    emulator: Emulator, api: requests.Session
) -> None:
    emulator.add_production_batches(8)
    emulator.configure(ignore_supplier_reference_filter=True)

    page = list_batches(emulator, api, supplier_reference_id="REF-1").json()

    assert page["total_count"] == 8


def test_feedstock_types_are_paged(emulator: Emulator, api: requests.Session) -> None:
    url = f"{emulator.base_url}/feedstock_types"
    first = api.get(url, params={"first": 3}).json()
    rest = api.get(url, params={"first": 3, "after": first["page_info"]["end_cursor"]}).json()
    by_reference = api.get(url, params={"supplier_reference_id": "FT-RICE"}).json()

    names = [node["name"] for node in first["nodes"] + rest["nodes"]]
    assert names == sorted(names)
    assert len(names) == 4
    assert (first["page_info"]["has_next_page"], rest["page_info"]["has_next_page"]) == (
        True,
        False,
    )
    assert [node["name"] for node in by_reference["nodes"]] == ["Rice husk"]
    assert set(first["nodes"][0]) == {"id", "name", "supplier_reference_id"}


def test_organisation(emulator: Emulator, api: requests.Session) -> None:
    organisation = api.get(f"{emulator.base_url}/organisation").json()

    assert organisation == emulator.organisation
    assert re.match(r"^org_[0-9A-HJKMNP-TV-Z]{16}$", organisation["id"])


# HTTP


def test_unknown_routes_and_methods(emulator: Emulator, api: requests.Session) -> None:
    assert api.get(f"{emulator.base_url}/removals").status_code == 404
    assert api.get(f"{emulator.url}/elsewhere").status_code == 404
    assert api.put(f"{emulator.base_url}/production_batches", json={}).status_code == 405


def test_every_answer_allows_keep_alive(emulator: Emulator, api: requests.Session) -> None:
    created = post(emulator, api, batch_body(emulator)).json()
    responses = [
        list_batches(emulator, api),
        post(emulator, api, {}),
        api.get(f"{emulator.base_url}/nowhere"),
        requests.get(f"{emulator.base_url}/organisation"),
        api.delete(f"{emulator.base_url}/production_batches/{created['id']}"),
    ]

    for response in responses:
        assert response.raw.version == 11
        assert response.headers.get("Connection") != "close"
        if response.status_code != 204:
            assert response.headers["Content-Length"] == str(len(response.content))
    assert emulator.stats()["connections_opened"] == 2  # the session's, and the one without it
