# syntax=docker/dockerfile:1
#
# Container images of reelfarm, both from this one file:
#
#   docker build --target worker      -t reelfarm-worker .
#   docker build --target coordinator -t reelfarm-coordinator .
#
# One binary, `reelfarm`, holds both roles (`reelfarm serve` is the coordinator, `reelfarm work`
# a render worker); `reelfarm-espeak` is the text-to-speech helper the worker runs beside it.
# docs/deploying.md explains the images, their settings and the GPU set-up.

ARG DEBIAN_RELEASE=bookworm

# ---------------------------------------------------------------------------------------------
# Build stage: the release binaries, with the same Debian 12 development packages as
# scripts/setup (FFmpeg's libraries, clang for the bindings, eSpeak NG's library).
FROM rust:1-${DEBIAN_RELEASE} AS build
# Package versions follow the Debian release the base image pins (security updates included);
# pinning each one would break the build at every point release.
# hadolint ignore=DL3008
RUN apt-get update \
    && apt-get install -y --no-install-recommends \
        pkg-config clang libclang-dev \
        libavcodec-dev libavformat-dev libavutil-dev libswscale-dev libswresample-dev \
        libavfilter-dev libavdevice-dev \
        libespeak-ng-dev \
    && rm -rf /var/lib/apt/lists/*
WORKDIR /src
COPY . .
# The cargo registry and the target folder live in BuildKit caches, so a rebuild after a source
# change compiles only what changed; the binaries are copied out of the cache into the image.
RUN --mount=type=cache,target=/usr/local/cargo/registry \
    --mount=type=cache,target=/src/target \
    cargo build --release --locked -p reelfarm -p tts-espeak \
    && install -D -m 0755 target/release/reelfarm /out/reelfarm \
    && install -D -m 0755 target/release/reelfarm-espeak /out/reelfarm-espeak

# ---------------------------------------------------------------------------------------------
# Coordinator: `reelfarm serve`. It never renders, so no Vulkan, Mesa or eSpeak NG here. The
# binary is the worker's, though, and links FFmpeg's libraries dynamically (`ldd` lists
# libavcodec, libavformat, libavutil and libswscale, with their own dependencies): the loader
# refuses to start it without them, so this image carries them too. That makes it larger than
# a coordinator alone would need; a binary built without FFmpeg does not exist today.
FROM debian:${DEBIAN_RELEASE}-slim AS coordinator
# hadolint ignore=DL3008
RUN apt-get update \
    && apt-get install -y --no-install-recommends \
        ca-certificates \
        libavcodec59 libavformat59 libavutil57 libswscale6 \
    && rm -rf /var/lib/apt/lists/* \
    && groupadd --system --gid 10001 reelfarm \
    && useradd --system --uid 10001 --gid reelfarm --home-dir /var/lib/reelfarm \
        --create-home --shell /usr/sbin/nologin reelfarm
COPY --from=build /out/reelfarm /usr/local/bin/reelfarm
# Listen on every interface inside the container; keys, the join token and the SQLite store
# (when no --store is given) live under /var/lib/reelfarm (mount a volume there).
ENV REELFARM_LISTEN=0.0.0.0:7600 \
    REELFARM_HTTP_LISTEN=0.0.0.0:7601 \
    REELFARM_METRICS_LISTEN=0.0.0.0:9600 \
    REELFARM_DATA=/var/lib/reelfarm \
    REELFARM_LOG_FORMAT=json
USER 10001:10001
WORKDIR /var/lib/reelfarm
VOLUME ["/var/lib/reelfarm"]
# gRPC, HTTP (events, REST API, download links, /healthz, /readyz), Prometheus /metrics.
EXPOSE 7600 7601 9600
ENTRYPOINT ["reelfarm"]
CMD ["serve"]

# ---------------------------------------------------------------------------------------------
# Worker: `reelfarm work`. Vulkan comes from the loader (libvulkan1) and an installable client
# driver: with the NVIDIA container toolkit, the host driver's ICD is mounted into the container
# (NVIDIA_DRIVER_CAPABILITIES must include `graphics` for that); without a GPU, Mesa's lavapipe
# (mesa-vulkan-drivers) renders on the CPU, correctly but far slower.
FROM debian:${DEBIAN_RELEASE}-slim AS worker
# hadolint ignore=DL3008
RUN apt-get update \
    && apt-get install -y --no-install-recommends \
        ca-certificates \
        libavcodec59 libavformat59 libavutil57 libswscale6 \
        libespeak-ng1 \
        libvulkan1 mesa-vulkan-drivers \
    && rm -rf /var/lib/apt/lists/* \
    && groupadd --system --gid 10001 reelfarm \
    && useradd --system --uid 10001 --gid reelfarm --home-dir /var/cache/reelfarm \
        --create-home --shell /usr/sbin/nologin reelfarm
# reelfarm finds its speech helper beside itself.
COPY --from=build /out/reelfarm /out/reelfarm-espeak /usr/local/bin/
# The NVIDIA container runtime reads these to decide what to mount: the GPUs, and the driver's
# compute, graphics (Vulkan ICD), utility (nvidia-smi) and video (NVENC/NVDEC) libraries.
# Mesa's device-select layer probes for a display server on headless machines; wgpu chooses
# the adapter itself.
ENV NVIDIA_VISIBLE_DEVICES=all \
    NVIDIA_DRIVER_CAPABILITIES=compute,graphics,utility,video \
    NODEVICE_SELECT=1 \
    REELFARM_CACHE=/var/cache/reelfarm \
    REELFARM_METRICS_LISTEN=0.0.0.0:9601 \
    REELFARM_LOG_FORMAT=json
USER 10001:10001
WORKDIR /var/cache/reelfarm
VOLUME ["/var/cache/reelfarm"]
# Prometheus /metrics, /healthz and /readyz.
EXPOSE 9601
ENTRYPOINT ["reelfarm"]
CMD ["work"]
