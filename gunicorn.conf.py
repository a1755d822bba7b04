"""gunicorn's settings for the portal's web process (the Dockerfile's, compose's), from the
same environment variables as the portal's own settings."""

import environ

env = environ.Env()

bind = f"0.0.0.0:{env.int('PORT', default=8000)}"
workers = env.int("WEB_CONCURRENCY", default=3)
# Long enough for the longest download: an export of 1,000,000 batches to XLSX streams for
# about four minutes (bench/import_export.py).
timeout = env.int("GUNICORN_TIMEOUT", default=300)
accesslog = "-"
# X-Forwarded-Proto (and the like) believed from these proxies only, as by the portal itself
# (portal/proxies.py). gunicorn's own default trusts 127.0.0.1.
forwarded_allow_ips = env.str("TRUSTED_PROXIES", default="")
