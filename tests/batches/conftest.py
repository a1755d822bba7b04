import pytest
from django.test import Client

from batches.models import Facility, FeedstockType
from tests.factories import make_facility, make_feedstock_type, make_user


@pytest.fixture
def operator_client(client: Client, db: None) -> Client:
    client.force_login(make_user("olivia", operator=True))
    return client


@pytest.fixture
def facility(db: None) -> Facility:
    return make_facility("Kiln A")


@pytest.fixture
def feedstock_type(db: None) -> FeedstockType:
    return make_feedstock_type("Wood chips")
