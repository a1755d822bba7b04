"""Fixtures for the whole suite: a local Isometric emulator over real HTTP, and a client for it.
Also Hypothesis's profiles."""

import os
from collections.abc import Iterator

import hypothesis
import pytest
from django.contrib.auth.models import User
from django.test import Client as DjangoClient

from isometric.client import Client
from isometric.emulator import Emulator
from tests.factories import log_in
from tests.hostile import HostileIsometric

# In CI the property tests draw the same examples on every run and both databases: a red build
# is then never a new random draw, and CI=1 replays it anywhere (print_blob gives the exact
# example too). Developers' runs draw new examples each time, and replay their own failures
# first from .hypothesis/.
hypothesis.settings.register_profile("ci", derandomize=True, database=None, print_blob=True)
if os.environ.get("CI"):
    hypothesis.settings.load_profile("ci")


@pytest.fixture(scope="session")
def emulator_server() -> Iterator[Emulator]:
    """One emulator on an ephemeral port for the whole run; `emulator` resets it for each test."""
    with Emulator(random_seed=20240122) as emulator:
        yield emulator


@pytest.fixture
def emulator(emulator_server: Emulator) -> Emulator:
    """The running emulator, fresh: no batches, default behaviour, empty stats."""
    emulator_server.reset()
    return emulator_server


@pytest.fixture
def isometric_client(emulator: Emulator) -> Iterator[Client]:
    """An isometric Client for `emulator`. (Not `client`: that is Django's test client.)"""
    with Client(
        emulator.base_url, emulator.client_secret, emulator.access_token, timeout=(1.0, 5.0)
    ) as client:
        yield client


@pytest.fixture
def hostile() -> Iterator[HostileIsometric]:
    """A hostile Isometric in its "normal" mode; set `hostile.mode` to make it misbehave."""
    with HostileIsometric() as server:
        yield server


@pytest.fixture
def admin_client(admin_user: User) -> DjangoClient:
    """pytest-django's (a client of its own), signed in with the second factor a superuser
    gives."""
    return log_in(DjangoClient(), admin_user)
