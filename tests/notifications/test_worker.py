"""The sync worker sends the digests: a batch Isometric refuses reaches its operator's inbox."""

import threading
import time

import pytest
from django.core import mail
from pytest_django.fixtures import Settings

from batches.models import ProductionBatch, SyncStatus
from batches.worker import Worker
from isometric.emulator import Emulator
from tests.factories import make_account, make_batch, make_facility, make_user


@pytest.mark.django_db(transaction=True)
def test_the_worker_emails_a_refused_batch_to_its_operator(
    emulator: Emulator, mailoutbox: list[mail.EmailMessage], settings: Settings
) -> None:
    settings.SYNC_POLL_INTERVAL = settings.NOTIFICATIONS_INTERVAL = 0.05
    settings.PORTAL_URL = "https://portal.example.com/"
    operator = make_user("olivia", operator=True, email="olivia@example.com")
    account = make_account("Kilns Ltd", emulator=emulator, members=(operator,))
    # A facility Isometric does not know: it refuses the batch.
    batch = make_batch(make_facility("Kiln Z", account=account), supplier_reference_id="KILN-Z-1")
    worker = Worker(concurrency=1)
    thread = threading.Thread(target=worker.run, daemon=True)
    thread.start()
    try:
        deadline = time.monotonic() + 20
        while not mailoutbox and time.monotonic() < deadline:
            time.sleep(0.05)
    finally:
        worker.stop()
        thread.join(timeout=30)

    assert ProductionBatch.objects.get(pk=batch.pk).sync_status == SyncStatus.REJECTED
    [message] = mailoutbox
    assert message.to == ["olivia@example.com"]
    assert f"KILN-Z-1: https://portal.example.com/batches/{batch.pk}/" in message.body
