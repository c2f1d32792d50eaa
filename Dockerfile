# Repair Inbox: one container, one gunicorn worker that also runs the background jobs.
# Data (SQLite database, secret key, stored attachments) lives in the /app/instance volume.
FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    INSTANCE_PATH=/app/instance \
    BIND=0.0.0.0:5000

WORKDIR /app
RUN useradd --create-home --uid 10001 repairinbox

# DejaVu fonts: the acceptance receipt PDF needs a TrueType font with Polish letters. The PostgreSQL client:
# pg_dump, pg_restore and psql for backups of a shop on PostgreSQL.
RUN apt-get update -q \
    && DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends fonts-dejavu-core \
       postgresql-client \
    && rm -rf /var/lib/apt/lists/*

COPY requirements.txt ./
RUN pip install -r requirements.txt

COPY app/ app/
COPY migrations/ migrations/
COPY templates/ templates/
COPY static/ static/
COPY wsgi.py gunicorn.conf.py babel.cfg ./
RUN pybabel compile -q -d app/translations \
    && mkdir -p /app/instance \
    && chown repairinbox:repairinbox /app/instance

USER repairinbox
VOLUME ["/app/instance"]
EXPOSE 5000
HEALTHCHECK --interval=30s --timeout=5s --start-period=20s --retries=3 \
    CMD python -c "import sys, urllib.request; sys.exit(0 if urllib.request.urlopen('http://127.0.0.1:5000/healthz', timeout=4).status == 200 else 1)"

# Same steps as `make run`: migrate, then serve.
CMD ["sh", "-c", "flask --app wsgi db upgrade && exec gunicorn -c gunicorn.conf.py wsgi:app"]
