# lanthorn in a container: the demo site (www/) at /srv/www, on port 8080, with metrics
# and health checks on 9090 (/metrics, /healthz, /readyz). See docs/deploy.md.
#
#   docker build -t lanthorn .
#   docker run --rm -p 8080:8080 lanthorn
#   docker run --rm -p 8080:8080 -v "$PWD/site:/srv/www:ro" lanthorn     # your own site
#
# Arguments after the image name replace all of CMD's: give the root, --host and the rest
# again with them (`-w 2` for two workers; `-w auto` counts the host's cores, not the
# container's CPU limit). `docker stop` waits 10 s: give it `-t` above --grace.
# Build stage: the hot path compiled with mypyc (docs/development.md) into a wheel; the
# image itself gets no compiler.
FROM python:3.11-slim AS build
ENV PIP_NO_CACHE_DIR=1 PIP_DISABLE_PIP_VERSION_CHECK=1 PIP_ROOT_USER_ACTION=ignore
RUN apt-get update && apt-get install -y --no-install-recommends gcc libc6-dev \
    && rm -rf /var/lib/apt/lists/*
COPY pyproject.toml setup.py README.md /tmp/lanthorn/
COPY src /tmp/lanthorn/src
RUN pip install 'setuptools>=77' 'mypy==2.4.1' /tmp/lanthorn \
    && LANTHORN_COMPILE=1 pip wheel --no-build-isolation --no-deps -w /wheels /tmp/lanthorn

FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PIP_ROOT_USER_ACTION=ignore

# What serving needs, and no more: the base dependencies all come as wheels.
COPY --from=build /wheels /tmp/wheels
RUN pip install /tmp/wheels/*.whl && rm -rf /tmp/wheels

COPY www /srv/www

# A numeric user, so that Kubernetes' runAsNonRoot can check it; it owns nothing.
RUN useradd --system --uid 10001 --user-group --no-create-home --home-dir /nonexistent \
      --shell /usr/sbin/nologin lanthorn
USER 10001:10001

EXPOSE 8080 9090
STOPSIGNAL SIGTERM
# Alive: /healthz on the metrics port answers 200 (urllib: no curl in the image).
HEALTHCHECK --interval=10s --timeout=3s --start-period=5s --retries=3 \
    CMD ["python", "-c", "import urllib.request as u; u.urlopen('http://127.0.0.1:9090/healthz', timeout=2)"]

ENTRYPOINT ["lanthorn"]
CMD ["/srv/www", "--host", "0.0.0.0", "--port", "8080", "--metrics", "0.0.0.0:9090"]
