"""Who gets what at every URL: the access matrix, every URL pattern for every role.

The cases come from the URLconf itself: every pattern, walked recursively (the admin's too), is
asked for by every role, with GET and with POST, and the answer must be the one in MATRIX. A
pattern without an entry fails test_every_url_pattern_has_an_entry, so a new URL needs its line
here. Arguments are filled with objects of account A or of account B ("[A]", "[B]" after the
pattern). A refused POST must leave the rows as they were, and no page a member of one account
is given may name another account's account, facility, feedstock type or batch.
"""

import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any
from urllib.parse import urlencode

import pytest
from auditlog.models import LogEntry
from axes.models import AccessAttempt, AccessFailureLog, AccessLog
from django.apps import apps
from django.conf import settings
from django.contrib.auth.models import Group, Permission, User
from django.contrib.contenttypes.models import ContentType
from django.core.files.uploadedfile import SimpleUploadedFile
from django.db import connection, models, transaction
from django.http import HttpResponseBase
from django.test import Client
from django.urls import URLPattern, URLResolver, get_resolver
from django.utils import timezone
from pytest_django import DjangoDbBlocker

from batches.models import (
    BatchImport,
    Facility,
    FeedstockType,
    ImportStatus,
    ProductionBatch,
    SyncAttempt,
    SyncStatus,
)
from batches.roles import OPERATORS
from isometric.emulator import Emulator
from notifications.models import Recipient
from portal.models import IsometricAccount
from tests.factories import (
    batch_form_data,
    isometric_id,
    log_in,
    make_account,
    make_batch,
    make_facility,
    make_feedstock_type,
    make_user,
)

# The columns of every row, in this order.
ROLES = (
    "anonymous",
    "operator_a",  # in the Operators group, member of A
    "operator_b",  # in the Operators group, member of B
    "operator_none",  # in the Operators group, member of no account
    "staff_a",  # is_staff, member of A, the batches app's model permissions
    "credential_admin",  # is_staff, in the Credential admins group, member of A
    "superuser",
)
# The answers:
#   200     the page (or a form refused with its errors)
#   403 404 405
#   login   302 to the portal's login page, /login/?next=…
#   alogin  302 to the admin's login page, /admin/login/?next=…
#   admin   302 to the admin's index: the admin's "does not exist" for an object the user may not
#           see (and where it sends a non-staff user who asks to log out of it)
#   302     any other redirect: after a POST that did something, to a change page, …
# A row is "GET answers" or ("GET answers", "POST answers").
Row = str | tuple[str, str]

# fmt: off
MATRIX: dict[str, Row] = {
    #     anon   op_A   op_B   op_0   staff  cred   super
    "dashboard /":
        ("login  200    200    200    200    200    200",
         "login  405    405    405    405    405    405"),
    "healthz /healthz":
        ("200    200    200    200    200    200    200",
         "405    405    405    405    405    405    405"),
    # For Prometheus, with the metrics token or from an allowed address (neither here): no
    # user, however privileged, reads it through a login.
    "metrics /metrics":
        ("403    403    403    403    403    403    403",
         "405    405    405    405    405    405    405"),
    # The second step of signing in, for superusers and credential admins (the matrix signs
    # them in with it given): for anyone else, back to where they were going.
    "second_factor /second-factor/":
        ("login  302    302    302    302    302    302",
         "login  302    302    302    302    302    302"),
    "second_factor_setup /second-factor/setup/":
        ("login  302    302    302    302    200    200",
         "login  302    302    302    302    200    200"),
    "second_factor_recovery_codes /second-factor/recovery-codes/":
        ("login  302    302    302    302    200    200",
         "login  302    302    302    302    200    200"),
    # Everyone's own time zone (POST: none, the portal's).
    "preferences /preferences/":
        ("login  200    200    200    200    200    200",
         "login  302    302    302    302    302    302"),
    "login /login/":
         "200    302    302    302    302    302    302",
    "logout /logout/":
        ("login  405    405    405    405    405    405",
         "login  302    302    302    302    302    302"),
    "batches:list /batches/":
         "login  200    200    200    200    403    200",
    # The list as a CSV file (see QUERIES): the rows of the user's accounts only.
    "batches:export /batches/export/":
        ("login  200    200    200    200    403    200",
         "login  405    405    405    405    403    405"),
    # POST: a valid batch of A (B's operator cannot choose A's facility: the form is refused).
    "batches:create /batches/new/":
        ("login  200    200    403    200    403    200",
         "login  302    200    403    302    403    302"),
    "batches:remote /batches/isometric/":
         "login  200    200    200    200    403    200",
    "batches:detail /batches/<int:pk>/ [A]":
         "login  200    404    404    200    403    200",
    "batches:detail /batches/<int:pk>/ [B]":
         "login  404    200    404    404    403    200",
    "batches:edit /batches/<int:pk>/edit/ [A]":
        ("login  200    404    404    200    403    200",
         "login  302    404    404    302    403    302"),
    "batches:edit /batches/<int:pk>/edit/ [B]":
        ("login  404    200    404    404    403    200",
         "login  404    302    404    404    403    302"),
    # Asked for the badge of A's (B's) batch (see QUERIES): another account's is left out.
    "batches:statuses /batches/statuses/ [A]":
        ("login  200    200    200    200    403    200",
         "login  405    405    405    405    403    405"),
    "batches:statuses /batches/statuses/ [B]":
        ("login  200    200    200    200    403    200",
         "login  405    405    405    405    403    405"),
    # POST: a reason, so the batch is voided where the user may void it.
    "batches:void /batches/<int:pk>/void/ [A]":
        ("login  200    404    404    200    403    200",
         "login  302    404    404    302    403    302"),
    "batches:void /batches/<int:pk>/void/ [B]":
        ("login  404    200    404    404    403    200",
         "login  404    302    404    404    403    302"),
    "batches:retry /batches/<int:pk>/retry/ [A]":
        ("login  405    405    405    405    403    405",
         "login  302    404    404    302    403    302"),
    "batches:retry /batches/<int:pk>/retry/ [B]":
        ("login  405    405    405    405    403    405",
         "login  404    302    404    404    403    302"),
    # POST: A's (B's) failed batch chosen on the home page; another account's is refused with
    # the page and its error.
    "batches:retry_many /batches/retry/ [A]":
        ("login  405    405    405    405    403    405",
         "login  302    200    200    302    403    302"),
    "batches:retry_many /batches/retry/ [B]":
        ("login  405    405    405    405    403    405",
         "login  200    302    200    200    403    302"),
    "batches:refresh /batches/refresh/":
        ("login  405    405    405    405    403    405",
         "login  302    302    302    302    403    302"),
    # POST: a file of one batch, into the user's one account.
    "batches:imports /batches/import/":
        ("login  200    200    403    200    403    200",
         "login  302    302    403    302    403    200"),
    "batches:import_template /batches/import/template/":
        ("login  200    200    403    200    403    200",
         "login  405    405    405    405    403    405"),
    "batches:import /batches/import/<int:pk>/ [A]":
        ("login  200    404    404    200    403    200",
         "login  405    405    405    405    403    405"),
    "batches:import /batches/import/<int:pk>/ [B]":
        ("login  404    200    404    404    403    200",
         "login  405    405    405    405    403    405"),
    "batches:import_start /batches/import/<int:pk>/start/ [A]":
        ("login  405    405    405    405    403    405",
         "login  302    404    404    302    403    302"),
    "batches:import_start /batches/import/<int:pk>/start/ [B]":
        ("login  405    405    405    405    403    405",
         "login  404    302    404    404    403    302"),
    "batches:import_rejected /batches/import/<int:pk>/rejected/ [A]":
        ("login  200    404    404    200    403    200",
         "login  405    405    405    405    403    405"),
    "batches:import_rejected /batches/import/<int:pk>/rejected/ [B]":
        ("login  404    200    404    404    403    200",
         "login  405    405    405    405    403    405"),
    # Each user's own choice of emails. POST: the box unticked, so the user's emails are off.
    "notifications:preferences /notifications/":
        ("login  200    200    200    200    200    200",
         "login  302    302    302    302    302    302"),
    #     anon   op_A   op_B   op_0   staff  cred   super
    "admin:index /admin/":
         "alogin alogin alogin alogin 200    200    200",
    "admin:login /admin/login/":
        ("200    200    200    200    admin  admin  admin",
         "200    200    200    200    200    200    200"),
    "admin:logout /admin/logout/":
        ("alogin admin  admin  admin  405    405    405",
         "alogin admin  admin  admin  302    302    302"),
    "admin:password_change /admin/password_change/":
         "alogin alogin alogin alogin 200    200    200",
    "admin:password_change_done /admin/password_change/done/":
        ("alogin alogin alogin alogin 200    200    200",
         "alogin alogin alogin alogin 405    405    405"),
    # Asked for the batch form's facilities (see QUERIES): the facility admin's rows.
    "admin:autocomplete /admin/autocomplete/":
        ("alogin alogin alogin alogin 200    403    200",
         "alogin alogin alogin alogin 405    405    405"),
    "admin:jsi18n /admin/jsi18n/":
        ("alogin alogin alogin alogin 200    200    200",
         "alogin alogin alogin alogin 405    405    405"),
    # "View on site" of a batch: a redirect to its page in the portal, for whoever may see
    # the batch in the admin.
    "admin:view_on_site /admin/r/<path:content_type_id>/<path:object_id>/ [A]":
         "alogin alogin alogin alogin 302    404    302",
    "admin:view_on_site /admin/r/<path:content_type_id>/<path:object_id>/ [B]":
         "alogin alogin alogin alogin 404    404    302",
    "admin:app_list /admin/^(?P<app_label>auth|axes|portal|batches)/$ [auth]":
         "alogin alogin alogin alogin 404    404    200",
    "admin:app_list /admin/^(?P<app_label>auth|axes|portal|batches)/$ [axes]":
         "alogin alogin alogin alogin 404    404    200",
    "admin:app_list /admin/^(?P<app_label>auth|axes|portal|batches)/$ [portal]":
         "alogin alogin alogin alogin 404    200    200",
    "admin:app_list /admin/^(?P<app_label>auth|axes|portal|batches)/$ [batches]":
         "alogin alogin alogin alogin 200    404    200",
    "admin:(unnamed) /admin/(?P<url>.*)$":
         "alogin alogin alogin alogin 404    404    404",
}
# fmt: on


def model_admin(app_model: str, rows: dict[str, Row]) -> dict[str, Row]:
    """A model admin's entries, by view: "changelist", "add", and "change", "delete", "history",
    "object" (its <object_id>/ redirect to the change page), each followed by " A" or " B" for
    an account's object or alone for the model's one object."""
    app, model = app_model.split(".")
    base = f"/admin/{app}/{model}/"
    routes = {
        "changelist": f"admin:{app}_{model}_changelist {base}",
        "add": f"admin:{app}_{model}_add {base}add/",
        "change": f"admin:{app}_{model}_change {base}<path:object_id>/change/",
        "delete": f"admin:{app}_{model}_delete {base}<path:object_id>/delete/",
        "history": f"admin:{app}_{model}_history {base}<path:object_id>/history/",
        "object": f"admin:(unnamed) {base}<path:object_id>/",
    }
    entries = {}
    for view, row in rows.items():
        kind, _, target = view.partition(" ")
        entries[routes[kind] + (f" [{target}]" if target else "")] = row
    return entries


# fmt: off
# A model admin's pages send the anonymous to the portal's login page (the site-wide pages above
# to the admin's): both are Django's.
# Only a superuser may touch users and groups: staff without the auth permissions get 403.
SUPERUSER_ONLY: dict[str, Row] = {
    #                   anon   op_A   op_B   op_0   staff  cred   super
    "changelist":     ("login  alogin alogin alogin 403    403    200",
                       "login  alogin alogin alogin 403    403    302"),
    "add":             "login  alogin alogin alogin 403    403    200",
    "change":          "login  alogin alogin alogin 403    403    200",
    "delete":         ("login  alogin alogin alogin 403    403    200",
                       "login  alogin alogin alogin 403    403    302"),
    "history":         "login  alogin alogin alogin 403    403    200",
    "object":          "login  alogin alogin alogin 302    302    302",
}
# Axes' logs: read-only, even for a superuser, who cannot add one (and whose "save" of a change
# form without a field to change is a redirect).
AXES_LOG: dict[str, Row] = {
    **SUPERUSER_ONLY,
    "add":             "login  alogin alogin alogin 403    403    403",
    "change":         ("login  alogin alogin alogin 403    403    200",
                       "login  alogin alogin alogin 403    403    302"),
}
# Facilities, feedstock types, batches: the staff member's accounts' rows only; another
# account's object "does not exist", and B's account, facilities and feedstock types are no
# choice in A's staff member's forms (the POSTs name them). The credential admin has no
# permission on them.
ACCOUNT_SCOPED: dict[str, Row] = {
    #                   anon   op_A   op_B   op_0   staff  cred   super
    "changelist":     ("login  alogin alogin alogin 200    403    200",
                       "login  alogin alogin alogin 302    403    302"),
    "add":            ("login  alogin alogin alogin 200    403    200",
                       "login  alogin alogin alogin 200    403    302"),
    "change A":       ("login  alogin alogin alogin 200    403    200",
                       "login  alogin alogin alogin 200    403    302"),
    "change B":       ("login  alogin alogin alogin admin  403    200",
                       "login  alogin alogin alogin admin  403    302"),
    "delete A":       ("login  alogin alogin alogin 200    403    200",
                       "login  alogin alogin alogin 302    403    302"),
    "delete B":       ("login  alogin alogin alogin admin  403    200",
                       "login  alogin alogin alogin admin  403    302"),
    "history A":       "login  alogin alogin alogin 200    403    200",
    "history B":       "login  alogin alogin alogin admin  admin  200",
    "object A":        "login  alogin alogin alogin 302    302    302",
    "object B":        "login  alogin alogin alogin 302    302    302",
}
# A batch's account cannot change (Isometric's id for it, and a correction's delete, are that
# organisation's): a superuser's move of A's batch to B's rows is refused with the form's error.
BATCH: dict[str, Row] = {
    **ACCOUNT_SCOPED,
    "change A":       ("login  alogin alogin alogin 200    403    200",
                       "login  alogin alogin alogin 200    403    200"),
}
# A facility with a batch cannot be deleted (PROTECT): the confirmation page says so.
FACILITY: dict[str, Row] = {
    **ACCOUNT_SCOPED,
    "changelist":      "login  alogin alogin alogin 200    403    200",
    "delete A":        "login  alogin alogin alogin 200    403    200",
    "delete B":        "login  alogin alogin alogin admin  403    200",
}
# The accounts themselves: credential admins (their own accounts) and superusers. Neither can
# delete an account that has batches (PROTECT): the confirmation page says so. The changelist's
# POST tests the connection of A's and B's accounts: a credential admin's, A's only.
ACCOUNTS: dict[str, Row] = {
    #                   anon   op_A   op_B   op_0   staff  cred   super
    "changelist":     ("login  alogin alogin alogin 403    200    200",
                       "login  alogin alogin alogin 403    302    302"),
    "add":             "login  alogin alogin alogin 403    200    200",
    "change A":        "login  alogin alogin alogin 403    200    200",
    "change B":        "login  alogin alogin alogin 403    admin  200",
    "delete A":        "login  alogin alogin alogin 403    200    200",
    "delete B":        "login  alogin alogin alogin 403    admin  200",
    "history A":       "login  alogin alogin alogin 403    200    200",
    "history B":       "login  alogin alogin alogin admin  admin  200",
    "object A":        "login  alogin alogin alogin 302    302    302",
    "object B":        "login  alogin alogin alogin 302    302    302",
}
MATRIX |= {
    **model_admin("auth.user", SUPERUSER_ONLY),
    "admin:auth_user_password_change /admin/auth/user/<id>/password/":
                       "login  alogin alogin alogin 403    403    200",
    **model_admin("auth.group", SUPERUSER_ONLY),
    **model_admin("axes.accessattempt", AXES_LOG),
    **model_admin("axes.accesslog", AXES_LOG),
    **model_admin("axes.accessfailurelog", AXES_LOG),
    **model_admin("portal.isometricaccount", ACCOUNTS),
    **model_admin("batches.facility", FACILITY),
    **model_admin("batches.feedstocktype", ACCOUNT_SCOPED),
    **model_admin("batches.productionbatch", BATCH),
}
# fmt: on

# What a refusal must say, besides its status: (entry, role) → text in the page.
SAYS = {
    ("batches:create /batches/new/", "operator_none"): (
        "You are not a member of any Isometric account"
    ),
}

# Query strings sent with every request to these patterns.
QUERIES = {
    # The batch form's address carries its reference; without one it redirects to a fresh one.
    "batches:create": {"reference": "NEW-0001"},
    "batches:export": {"format": "csv"},
    "admin:autocomplete": {
        "app_label": "batches",
        "model_name": "productionbatch",
        "field_name": "facility",
    },
}
# Patterns whose query names an account's batch: its id, for the entry's target.
BATCH_QUERIES = {"batches:statuses": "ids"}


@dataclass
class World:
    """Accounts A and B with a facility, a feedstock type and a failed batch each, a user per
    role, and the unscoped objects the admin's URLs are asked about."""

    users: dict[str, User | None]
    objects: dict[tuple[type[models.Model], str], models.Model]
    markers: dict[str, list[str]]  # names that only members of A (of B) may see
    sessions: dict[str, str] = field(default_factory=dict)  # role → a logged-in session's key

    def object_for(self, route: str, target: str) -> models.Model:
        admin_model = re.match(r"/admin/(\w+)/(\w+)/", route)
        model = apps.get_model(admin_model[1], admin_model[2]) if admin_model else ProductionBatch
        if route.startswith("/batches/import/"):
            model = BatchImport
        return self.objects[model, target if target in ("A", "B") else ""]


def build_world(emulator: Emulator) -> World:
    objects: dict[tuple[type[models.Model], str], models.Model] = {}
    markers = {}
    for target, name in [("A", "Alderley"), ("B", "Brockwell")]:
        account = make_account(f"{name} Char", emulator=emulator)
        facility = make_facility(f"{name} kiln", account=account)
        feedstock_type = make_feedstock_type(f"{name} straw", account=account)
        batch = make_batch(
            facility,
            [feedstock_type],
            supplier_reference_id=f"{name.upper()}-0001",
            sync_status=SyncStatus.FAILED,
        )
        batch_import = BatchImport.objects.create(
            account=account,
            file_name=f"{name.lower()}-season.csv",
            status=ImportStatus.CHECKED,
        )
        batch_import.rejected_rows.create(
            number=2, conflicting=False, values={}, errors={"Mass": ["x"]}
        )
        for thing in (account, facility, feedstock_type, batch, batch_import):
            objects[type(thing), target] = thing
        markers[target] = [
            account.name,
            batch_import.file_name,
            facility.name,
            feedstock_type.name,
            f"{name.upper()}-",
            f'id="batch-{batch.pk}-status"',  # its badge, as the list and its poller show it
        ]
    account_a, account_b = objects[IsometricAccount, "A"], objects[IsometricAccount, "B"]
    assert isinstance(account_a, IsometricAccount) and isinstance(account_b, IsometricAccount)

    staff = make_user("stella", is_staff=True)
    staff.user_permissions.set(
        Permission.objects.filter(
            content_type__app_label="batches",
            content_type__model__in=["productionbatch", "facility", "feedstocktype"],
        )
    )
    credential_admin = make_user("carl", credential_admin=True)
    operator_a, operator_b = make_user("oona", operator=True), make_user("otto", operator=True)
    account_a.members.add(operator_a, staff, credential_admin)
    account_b.members.add(operator_b)
    users: dict[str, User | None] = {
        "anonymous": None,
        "operator_a": operator_a,
        "operator_b": operator_b,
        "operator_none": make_user("ozzy", operator=True),
        "staff_a": staff,
        "credential_admin": credential_admin,
        "superuser": make_user("root", is_staff=True, is_superuser=True),
    }

    log = {
        "username": "mallory",
        "ip_address": "192.0.2.1",
        "user_agent": "curl/8",
        "path_info": "/login/",
    }
    objects |= {
        (User, ""): make_user("bystander"),
        (Group, ""): Group.objects.get(name=OPERATORS),
        (AccessAttempt, ""): AccessAttempt.objects.create(
            **log, get_data="", post_data="", failures_since_start=1
        ),
        (AccessLog, ""): AccessLog.objects.create(**log),
        (AccessFailureLog, ""): AccessFailureLog.objects.create(**log),
    }
    world = World(users, objects, markers)
    for role, user in users.items():
        if user:
            client = Client()
            log_in(client, user)
            world.sessions[role] = client.cookies[settings.SESSION_COOKIE_NAME].value
    return world


@pytest.fixture(scope="module")
def world(
    django_db_setup: None, django_db_blocker: DjangoDbBlocker, emulator_server: Emulator
) -> Iterator[World]:
    """Built once for the module, in a transaction rolled back at its end; each test's own
    changes are rolled back after it (its savepoint)."""
    with django_db_blocker.unblock(), transaction.atomic():
        yield build_world(emulator_server)
        transaction.set_rollback(True)


# The rows a refused POST must leave as they were (and leave out of the history).
WATCHED: list[type[models.Model]] = [
    IsometricAccount,
    IsometricAccount.members.through,
    Facility,
    FeedstockType,
    ProductionBatch,
    ProductionBatch.feedstock_types.through,
    SyncAttempt,
    User,
    User.groups.through,
    User.user_permissions.through,
    Group,
    Group.permissions.through,
    AccessAttempt,
    AccessLog,
    AccessFailureLog,
    LogEntry,
    Recipient,
]


Snapshot = dict[str, list[dict[str, Any]]]


def rows() -> Snapshot:
    """Every watched table's rows (raw SQL: the ORM's query building would double the run)."""
    snapshot = {}
    with connection.cursor() as cursor:
        for model in WATCHED:
            cursor.execute(f"SELECT * FROM {connection.ops.quote_name(model._meta.db_table)}")
            names = [column[0] for column in cursor.description]
            snapshot[model._meta.label] = sorted(
                (dict(zip(names, row, strict=True)) for row in cursor.fetchall()),
                key=lambda row: row[model._meta.pk.column],
            )
    return snapshot


def of_account(snapshot: Snapshot, pk: int) -> Snapshot:
    """The part of a snapshot that is one account's: it, its members, its rows."""
    batches = {row["id"] for row in snapshot["batches.ProductionBatch"] if row["account_id"] == pk}

    def its(label: str, row: dict[str, Any]) -> bool:
        if label == "portal.IsometricAccount":
            return bool(row["id"] == pk)
        return pk in (row.get("account_id"), row.get("isometricaccount_id")) or (
            row.get("productionbatch_id", row.get("batch_id")) in batches
        )

    return {label: [row for row in table if its(label, row)] for label, table in snapshot.items()}


def url_patterns(
    resolver: URLResolver | None = None, prefix: str = "/", namespace: str = ""
) -> Iterator[str]:
    """Every pattern of the URLconf as "namespace:name /route"."""
    for entry in (resolver or get_resolver()).url_patterns:
        if isinstance(entry, URLResolver):
            inner = ":".join(filter(None, [namespace, entry.namespace]))
            yield from url_patterns(entry, prefix + str(entry.pattern), inner)
        else:
            assert isinstance(entry, URLPattern)
            name = ":".join(filter(None, [namespace, entry.name or "(unnamed)"]))
            yield f"{name} {prefix}{entry.pattern}"


def split(entry: str) -> tuple[str, str]:
    """An entry's pattern and its target ("A", "B", an app label, or "")."""
    found = re.fullmatch(r"(.*?)(?: \[(\w+)\])?", entry)
    assert found
    return found[1], found[2] or ""


def expected(entry: str, role: str, method: str) -> str:
    row = MATRIX[entry]
    get, post = (row, row) if isinstance(row, str) else row
    answers = (get if method == "GET" else post).split()
    assert len(answers) == len(ROLES), f"{entry}: {len(answers)} answers for {len(ROLES)} roles"
    return answers[ROLES.index(role)]


def url_for(entry: str, world: World) -> str:
    pattern, target = split(entry)
    route = pattern.split(" ", 1)[1]

    def value(name: str) -> str:
        if name == "app_label":
            return target
        if name == "url":
            return "no-such-page/"
        if name == "content_type_id":
            return str(ContentType.objects.get_for_model(ProductionBatch).pk)
        return str(world.object_for(route, target).pk)

    path = re.sub(r"\(\?P<(\w+)>[^)]*\)", lambda m: value(m[1]), route)
    path = re.sub(r"<(?:\w+:)?(\w+)>", lambda m: value(m[1]), path)
    return path.replace("^", "").replace("$", "")


def query_for(entry: str, world: World) -> dict[str, Any]:
    name, target = entry.split(" ", 1)[0], split(entry)[1]
    if name in BATCH_QUERIES:
        return {BATCH_QUERIES[name]: world.objects[ProductionBatch, target].pk}
    return QUERIES.get(name, {})


def post_data(entry: str, world: World) -> dict[str, Any]:
    """What a POST sends: a real form where one can write into an account (always naming B's
    rows in the admin: a member of A must be refused), the confirmation of a delete, a "delete
    selected" (or "test connection") of A's and B's objects on a changelist; else nothing."""
    name, target = entry.split(" ", 1)[0], split(entry)[1]
    target = target if target in ("A", "B") else "A"
    account, facility, feedstock_type, batch = (
        world.objects[model, target]
        for model in (IsometricAccount, Facility, FeedstockType, ProductionBatch)
    )
    assert isinstance(facility, Facility) and isinstance(feedstock_type, FeedstockType)
    assert isinstance(batch, ProductionBatch)
    if name == "batches:create":
        return batch_form_data(
            facility, feedstock_type, supplier_reference_id="NEW-0001", account=account.pk
        )
    if name == "batches:edit":
        return batch_form_data(
            facility,
            feedstock_type,
            supplier_reference_id=batch.supplier_reference_id,
            display_name="Changed",
            account=account.pk,
        )
    if name == "batches:retry_many":
        return {"batches": [batch.pk]}
    if name == "batches:void":
        return {"reason": "Recorded twice"}
    if name == "batches:imports":
        started = timezone.localtime() - timedelta(days=2)
        content = (
            "Facility,Feedstock types,Production started,Production ended,Mass\n"
            f"{facility.name},{feedstock_type.name},{started:%Y-%m-%d %H:%M},"
            f"{started + timedelta(hours=6):%Y-%m-%d %H:%M},3\n"
        )
        return {"file": SimpleUploadedFile("season.csv", content.encode())}
    if name.endswith("_delete"):
        return {"post": "yes"}
    found = re.match(r"\S+ /admin/(\w+)/(\w+)/", entry)
    view = name.removeprefix(f"admin:{found[1]}_{found[2]}_") if found else ""
    if view not in ("changelist", "add", "change"):
        return {}
    assert found
    model = apps.get_model(found[1], found[2])
    if view == "changelist":
        selected = [o.pk for (m, _), o in world.objects.items() if m is model]
        action = "test_connection" if model is IsometricAccount else "delete_selected"
        return {"action": action, "_selected_action": selected, "post": "yes"}
    b = {m: world.objects[m, "B"] for m in (IsometricAccount, Facility, FeedstockType)}
    if model in (Facility, FeedstockType):
        return {
            "account": b[IsometricAccount].pk,
            "name": "Moved",
            "isometric_id": isometric_id("new"),
        }
    if model is ProductionBatch:
        b_facility, b_feedstock_type = b[Facility], b[FeedstockType]
        assert isinstance(b_facility, Facility) and isinstance(b_feedstock_type, FeedstockType)
        return batch_form_data(
            b_facility,
            b_feedstock_type,
            supplier_reference_id="MOVED-0001",
            account=b[IsometricAccount].pk,
        )
    return {}


def answer(response: HttpResponseBase) -> str:
    """The response in the matrix's words."""
    if response.status_code != 302:
        return str(response.status_code)
    location = response["Location"]
    if location.startswith("/login/?next="):
        return "login"
    if location.startswith("/admin/login/?next="):
        return "alogin"
    return "admin" if location == "/admin/" else "302"


def cases() -> Iterator[Any]:
    """Each entry of each URL pattern, for each role and method. A pattern without an entry has
    no case: test_every_url_pattern_has_an_entry fails instead."""
    for pattern in url_patterns():
        for entry in (e for e in MATRIX if split(e)[0] == pattern):
            for role in ROLES:
                for method in ("GET", "POST"):
                    yield pytest.param(entry, role, method, id=f"{entry} | {role} | {method}")


def test_every_url_pattern_has_an_entry() -> None:
    covered = {split(entry)[0] for entry in MATRIX}
    missing = [pattern for pattern in url_patterns() if pattern not in covered]
    assert not missing, "URL patterns without an entry in MATRIX:\n" + "\n".join(missing)


def test_every_entry_is_a_url_pattern() -> None:
    patterns = set(url_patterns())
    stale = [entry for entry in MATRIX if split(entry)[0] not in patterns]
    assert not stale, "MATRIX entries for no URL pattern:\n" + "\n".join(stale)


# Each account's members, whose POSTs must leave the other account's rows as they were.
MEMBERS = {"operator_a": "A", "staff_a": "A", "credential_admin": "A", "operator_b": "B"}


@pytest.mark.django_db
@pytest.mark.parametrize(("entry", "role", "method"), list(cases()))
def test_access(client: Client, world: World, entry: str, role: str, method: str) -> None:
    want = expected(entry, role, method)
    url = url_for(entry, world)
    query = query_for(entry, world)
    if role in world.sessions:
        client.cookies[settings.SESSION_COOKIE_NAME] = world.sessions[role]
    before = rows() if method == "POST" else {}
    if method == "GET":
        response = client.get(url, query)
    else:
        response = client.post(
            f"{url}?{urlencode(query)}" if query else url, post_data(entry, world)
        )

    got = answer(response)
    where = f" → {response['Location']}" if response.status_code in (301, 302) else ""
    assert got == want, f"{method} {url} as {role}: {got}{where}, expected {want}"
    if says := SAYS.get((entry, role)):
        assert says in response.content.decode(), f"{method} {url} as {role} does not say why"
    if method == "POST":
        after = rows()
        if want != "302":
            assert after == before, f"POST {url} as {role} was refused ({got}) but changed rows"
    if role not in MEMBERS:
        return
    other = "B" if MEMBERS[role] == "A" else "A"
    if method == "POST":
        pk = world.objects[IsometricAccount, other].pk
        assert of_account(after, pk) == of_account(before, pk), (
            f"POST {url} as {role} changed account {other}'s rows"
        )
    body = b"".join(response.streaming_content) if response.streaming else response.content  # type: ignore[attr-defined]
    content = body.decode(errors="replace")
    shown = [marker for marker in world.markers[other] if marker in content]
    assert not shown, f"{method} {url} as {role} shows account {other}'s {shown}"
