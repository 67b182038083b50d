# syntax=docker/dockerfile:1
# outbox-relay container image: built on Debian 12, run on debian:12-slim as
# an unprivileged user. The Helm chart's default image is built from this file:
#   docker build -t outbox-relay:0.1.0 .

FROM debian:12 AS build
RUN apt-get update \
 && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends \
      build-essential cmake ninja-build pkg-config \
      libpq-dev librdkafka-dev libsimdjson-dev libyaml-cpp-dev libspdlog-dev libfmt-dev \
      libcpp-httplib-dev libcli11-dev libsystemd-dev libjemalloc-dev ccache \
 && rm -rf /var/lib/apt/lists/*
WORKDIR /src
COPY CMakeLists.txt README.md ./
COPY src ./src
COPY sql ./sql
COPY deploy ./deploy
COPY docs ./docs
# The compiler cache lives in a cache mount, kept by the builder between
# builds and never in a layer: after a source change only the changed files
# are compiled again. The build tree is thrown away with the RUN.
RUN --mount=type=cache,id=outbox-relay-ccache,target=/root/.cache/ccache \
    cmake -S . -B /tmp/build -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo -DOUTBOX_TESTS=OFF \
      -DCMAKE_INSTALL_PREFIX=/usr -DCMAKE_CXX_COMPILER_LAUNCHER=ccache \
 && cmake --build /tmp/build \
 && DESTDIR=/out cmake --install /tmp/build --strip \
 && ccache --show-stats \
 && rm -rf /tmp/build

FROM debian:12-slim
RUN apt-get update \
 && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends \
      ca-certificates libpq5 librdkafka1 libsimdjson14 libyaml-cpp0.7 libspdlog1.10-fmt9 \
      libfmt9 libcpp-httplib0.11 libsystemd0 libjemalloc2 \
 && rm -rf /var/lib/apt/lists/*
COPY --from=build /out/usr/bin/outbox-relay /usr/bin/outbox-relay
COPY --from=build /out/usr/share/outbox-relay /usr/share/outbox-relay
COPY --from=build /out/usr/share/doc/outbox-relay /usr/share/doc/outbox-relay
# A numeric user, so that Kubernetes can check runAsNonRoot without a passwd
# entry; the chart runs it with a read-only root file system.
USER 65532:65532
EXPOSE 9187
ENTRYPOINT ["/usr/bin/outbox-relay"]
CMD ["run", "--config", "/etc/outbox-relay/config.yaml"]
