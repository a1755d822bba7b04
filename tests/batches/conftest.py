import pytest
from django.contrib.auth.models import User
from django.test import Client

from batches.models import Facility, FeedstockType
from isometric.emulator import Emulator
from portal.models import IsometricAccount
from tests.factories import log_in, make_account, make_facility, make_feedstock_type, make_user


@pytest.fixture
def operator(client: Client, account: IsometricAccount) -> User:
    """An operator of `account`, logged in on `client`."""
    user = make_user("olivia", operator=True)
    account.members.add(user)
    log_in(client, user)
    return user


@pytest.fixture
def operator_client(client: Client, operator: User) -> Client:
    return client


@pytest.fixture
def facility(account: IsometricAccount) -> Facility:
    return make_facility("Kiln A", account=account)


@pytest.fixture
def feedstock_type(account: IsometricAccount) -> FeedstockType:
    return make_feedstock_type("Wood chips", account=account)


@pytest.fixture
def account(emulator: Emulator, db: None) -> IsometricAccount:
    """An account for the emulator, whose facility and feedstock type the emulator knows."""
    return make_account("Kilns Ltd", emulator=emulator)


@pytest.fixture
def known_facility(emulator: Emulator, account: IsometricAccount) -> Facility:
    """A facility the emulator knows (the emulator is shared: tests add none to it)."""
    [facility, *_] = emulator.facilities()
    return Facility.objects.create(
        account=account, isometric_id=facility["id"], name=facility["name"]
    )


@pytest.fixture
def known_feedstock_type(emulator: Emulator, account: IsometricAccount) -> FeedstockType:
    [feedstock_type, *_] = emulator.feedstock_types()
    return FeedstockType.objects.create(
        account=account, isometric_id=feedstock_type["id"], name=feedstock_type["name"]
    )
