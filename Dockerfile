# Portier: `docker build -t portier .` then
#   docker run --env-file .env -v portier-data:/data -v "$PWD/catalog.toml:/app/catalog.toml:ro" \
#     -p 8080:8080 portier
# (run `portier db upgrade` the same way first if your deployment migrates separately.)

# Build a wheel, so the final image holds the installed package and no source tree.
FROM python:3.11-slim AS build
WORKDIR /src
COPY . .
RUN pip wheel --no-cache-dir --no-deps --wheel-dir /wheels .

FROM python:3.11-slim
ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1
COPY --from=build /wheels /wheels
RUN pip install /wheels/*.whl && rm -rf /wheels

RUN useradd --system --uid 10001 --user-group --home-dir /app --shell /usr/sbin/nologin portier \
    && mkdir -p /app /data \
    && chown portier:portier /data
WORKDIR /app
USER portier

# SQLite lives on the volume; PORTIER_CATALOG defaults to /app/catalog.toml (mount it).
ENV DATABASE_URL=sqlite:////data/portier.db \
    PORTIER_HOST=0.0.0.0 \
    PORTIER_PORT=8080
VOLUME /data
EXPOSE 8080

HEALTHCHECK --interval=30s --timeout=5s --start-period=20s \
    CMD python -c "import os, urllib.request; urllib.request.urlopen(f'http://127.0.0.1:{os.environ.get(\"PORTIER_PORT\", \"8080\")}/healthz', timeout=4)"

CMD ["portier", "run"]
