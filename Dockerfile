# Signoff's container image: `docker build -t signoff .`, then see compose.yaml and the README's
# "Self-host" section. Two stages: the first installs Signoff and its runtime dependencies
# (pinned by requirements-runtime.lock, the lock's runtime part) into a virtual environment with
# scripts/image-install.sh, the script tests/deploy/test_image_install.py runs too; the second
# copies that environment onto a clean base and runs it as an unprivileged user.
#
# BASE_IMAGE: any Debian-like image with Python 3.11 as `python3` (and its venv module), the
# same for both stages (the environment's interpreter link points into it).
ARG BASE_IMAGE=python:3.11-slim-bookworm

FROM ${BASE_IMAGE} AS build
WORKDIR /src
COPY pyproject.toml requirements-runtime.lock README.md ./
COPY src ./src
COPY scripts/image-install.sh ./scripts/
RUN scripts/image-install.sh /src /opt/signoff

FROM ${BASE_IMAGE}
RUN useradd --uid 10001 --user-group --home-dir /data --no-create-home --shell /usr/sbin/nologin signoff \
    && mkdir /data && chown signoff:signoff /data
COPY --from=build /opt/signoff /opt/signoff
# Listen on every interface of the container (the default, 127.0.0.1, is unreachable from
# outside it); SQLite and the generated development secret live in the /data volume.
ENV PATH=/opt/signoff/bin:$PATH \
    PYTHONUNBUFFERED=1 \
    PYTHONDONTWRITEBYTECODE=1 \
    SIGNOFF_HOST=0.0.0.0 \
    SIGNOFF_PORT=8000 \
    SIGNOFF_DATA_DIR=/data
USER signoff
WORKDIR /data
VOLUME ["/data"]
EXPOSE 8000
# Liveness through /healthz with the image's own Python (slim images have no curl).
HEALTHCHECK --interval=30s --timeout=5s --start-period=30s --retries=3 \
    CMD python3 -c "import os, urllib.request; urllib.request.urlopen('http://127.0.0.1:%s/healthz' % os.environ.get('SIGNOFF_PORT', '8000'), timeout=4)"
ENTRYPOINT ["signoff"]
CMD ["serve"]
