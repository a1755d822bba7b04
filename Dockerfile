FROM python:3.12-slim

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1

WORKDIR /app
RUN useradd --create-home --uid 10001 portal

COPY pyproject.toml README.md ./
COPY portal ./portal
COPY batches ./batches
COPY isometric ./isometric
COPY notifications ./notifications
RUN pip install .

COPY manage.py gunicorn.conf.py ./
COPY templates ./templates
COPY static ./static
RUN python manage.py collectstatic --no-input \
    && mkdir /app/data && chown portal /app/data
# SQLite in a volume for a single-machine install; production sets DATABASE_URL to PostgreSQL.
ENV DATABASE_URL=sqlite:////app/data/db.sqlite3
VOLUME /app/data

USER portal
EXPOSE 8000
# Plain HTTP from inside the container, with a host the portal serves (see SECURE_REDIRECT_EXEMPT).
HEALTHCHECK --interval=30s --timeout=5s --start-period=20s --retries=3 CMD \
    python -c "import os, urllib.request; host = os.environ.get('ALLOWED_HOSTS', 'localhost').split(',')[0]; urllib.request.urlopen(urllib.request.Request('http://127.0.0.1:' + os.environ.get('PORT', '8000') + '/healthz', headers={'Host': host}), timeout=4)"
# gunicorn reads its settings from gunicorn.conf.py (workers, timeout, trusted proxies).
CMD ["sh", "-c", "python manage.py migrate --no-input && exec gunicorn portal.wsgi"]
