# backprop-service: build the wheel and its dependencies into a virtual environment, then copy
# that environment into a runtime image with nothing else. BASE is any image with Python 3.11+,
# the venv module and pip (python:3.12-slim, or Debian bookworm with python3-venv).
ARG BASE=python:3.12-slim

FROM ${BASE} AS build
ENV PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PIP_NO_CACHE_DIR=1
WORKDIR /src
COPY pyproject.toml README.md ./
COPY service ./service
RUN python3 -m venv /opt/venv \
    && /opt/venv/bin/pip wheel --no-cache-dir --no-deps --wheel-dir /wheels . \
    && /opt/venv/bin/pip install --no-cache-dir /wheels/backprop_service-*.whl \
    && /opt/venv/bin/pip uninstall --yes pip

FROM ${BASE}
# A fixed, numeric, unprivileged user: orchestrators can check it is not root without
# looking up a name.
ARG UID=10001
ENV PATH=/opt/venv/bin:$PATH \
    PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    BACKPROP_HOST=0.0.0.0 \
    BACKPROP_PORT=8000 \
    BACKPROP_REGISTRY=sqlite:////data/backprop.db
COPY --from=build /opt/venv /opt/venv
RUN mkdir -p /data && chown ${UID}:${UID} /data
VOLUME ["/data"]
WORKDIR /data
USER ${UID}:${UID}
EXPOSE 8000
HEALTHCHECK --interval=10s --timeout=5s --start-period=15s --retries=3 \
    CMD ["python3", "-c", "import os, urllib.request as r; r.urlopen('http://127.0.0.1:%s/healthz' % os.environ.get('BACKPROP_PORT', '8000'), timeout=4)"]
# Exec form: the server is PID 1 and gets SIGTERM itself; uvicorn then stops accepting, lets
# the requests in flight finish (up to 30 s) and exits. Every BACKPROP_* variable applies.
CMD ["backprop-service", "serve"]
