# meshctl in a container:  docker build -t meshctl .   then   docker run meshctl <command> [flags]
#
#   docker run -p 8500:8500 meshctl                         # agent -dev -client 0.0.0.0 (the default)
#   docker run --network host meshctl template -template "in.ctmpl:/data/out.conf" ...
#   docker run --user root -v /var/run/docker.sock:/var/run/docker.sock meshctl registrator ...
#
# Build arguments: BASE (any Debian-like image with python3 >= 3.11 and its venv module; the
# official slim image by default) and pip's own settings PIP_INDEX_URL, PIP_EXTRA_INDEX_URL,
# PIP_FIND_LINKS, PIP_NO_INDEX for a private or offline mirror. Plain Dockerfile syntax: the
# classic builder (Debian's docker.io) and BuildKit both build it.
ARG BASE=python:3.11-slim

FROM ${BASE} AS build
ARG PIP_INDEX_URL
ARG PIP_EXTRA_INDEX_URL
ARG PIP_FIND_LINKS
ARG PIP_NO_INDEX
COPY pyproject.toml README.md /src/
COPY meshctl /src/meshctl
# the wheel of this checkout, installed with its dependencies into a venv copied whole below;
# pip and setuptools are not needed at run time
RUN python3 -m venv /opt/meshctl \
 && /opt/meshctl/bin/pip wheel --no-cache-dir --quiet --no-deps --wheel-dir /tmp/dist /src \
 && /opt/meshctl/bin/pip install --no-cache-dir --quiet "$(ls /tmp/dist/meshctl-*.whl)[fast]" \
 && /opt/meshctl/bin/pip uninstall --quiet --yes pip setuptools \
 && /opt/meshctl/bin/meshctl --version

FROM ${BASE}
COPY --from=build /opt/meshctl /opt/meshctl
# non-root by default; /data belongs to it, so a named volume mounted there (rendered files, a
# shared proxy config) is writable by the tool. registrator needs the Docker socket: run it with
# `--group-add $(stat -c %g /var/run/docker.sock)` (or `--user root`).
RUN useradd --system --uid 10001 --user-group --home-dir /data --no-create-home --shell /usr/sbin/nologin meshctl \
 && mkdir -p /data && chown 10001:10001 /data
ENV PATH=/opt/meshctl/bin:$PATH PYTHONUNBUFFERED=1
WORKDIR /data
USER 10001:10001
EXPOSE 8500 8600 8600/udp
# The store this container works with answers /v1/status/leader with a leader: the agent itself
# (127.0.0.1:8500), or the store a tool talks to (CONSUL_HTTP_ADDR); MESHCTL_HEALTH_ADDR overrides.
HEALTHCHECK --interval=30s --timeout=5s --start-period=10s --retries=3 CMD ["python", "-m", "meshctl.healthcheck"]
# meshctl is PID 1: it reaps the zombies of its commands and forwards signals (meshctl/process/init.py)
ENTRYPOINT ["meshctl"]
CMD ["agent", "-dev", "-client", "0.0.0.0"]
