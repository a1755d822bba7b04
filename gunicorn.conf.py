"""gunicorn's settings for the portal's web process (the Dockerfile's, compose's), from the
same environment variables as the portal's own settings."""

import environ

env = environ.Env()

bind = f"0.0.0.0:{env.int('PORT', default=8000)}"
workers = env.int("WEB_CONCURRENCY", default=3)
# Long enough for the longest download: an export of 1,000,000 batches to XLSX streams for
# about four minutes (bench/import_export.py).
timeout = env.int("GUNICORN_TIMEOUT", default=300)
# No access log: the portal logs each request itself (portal/metrics.py), JSON if LOG_FORMAT says.
# X-Forwarded-Proto (and the like) believed from these proxies only, as by the portal itself
# (portal/proxies.py). gunicorn's own default trusts 127.0.0.1.
forwarded_allow_ips = env.str("TRUSTED_PROXIES", default="")


def on_starting(server: object) -> None:
    """gunicorn's processes add up their metrics (portal/metrics.py) in PROMETHEUS_MULTIPROC_DIR:
    a fresh temporary directory of this server's own unless one is given, emptied at start. Set
    here, not in the image, so that only gunicorn's processes write there (the worker counts
    in memory and serves its own)."""
    import os
    import tempfile
    from pathlib import Path

    if "PROMETHEUS_MULTIPROC_DIR" not in os.environ:
        os.environ["PROMETHEUS_MULTIPROC_DIR"] = tempfile.mkdtemp(prefix="batch-portal-metrics-")
        return
    directory = Path(os.environ["PROMETHEUS_MULTIPROC_DIR"])
    directory.mkdir(parents=True, exist_ok=True)
    for stale in directory.glob("*.db"):
        stale.unlink()


def child_exit(server: object, worker: object) -> None:
    """With PROMETHEUS_MULTIPROC_DIR, a process's counts are files there: a dead one's are
    closed (portal/metrics.py)."""
    import os

    if "PROMETHEUS_MULTIPROC_DIR" in os.environ:
        from prometheus_client import multiprocess

        multiprocess.mark_process_dead(worker.pid)  # type: ignore[attr-defined]
