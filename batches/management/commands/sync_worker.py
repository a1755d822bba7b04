import signal
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from batches.worker import Worker
from portal.metrics import serve_worker_metrics


class Command(BaseCommand):
    help = (
        "Push due batches to Isometric, pull accounts on schedule, import uploads and email "
        "notifications until stopped "
        "(SIGTERM or Ctrl-C finish the attempts in flight, then exit)."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument(
            "--concurrency", type=int, default=4, help="pushes at once (default: %(default)s)"
        )
        parser.add_argument(
            "--once", action="store_true", help="push everything due, then exit (for cron)"
        )
        parser.add_argument(
            "--metrics-port",
            type=int,
            help="serve the worker's metrics for Prometheus on this port (see METRICS_TOKEN)",
        )

    def handle(
        self, *args: Any, concurrency: int, once: bool, metrics_port: int | None, **options: Any
    ) -> None:
        if concurrency < 1:
            raise CommandError("--concurrency must be at least 1")
        if metrics_port is not None:
            serve_worker_metrics(metrics_port)
        worker = Worker(concurrency, once=once)
        for signum in (signal.SIGTERM, signal.SIGINT):
            signal.signal(signum, lambda *_: worker.stop())
        worker.run()
