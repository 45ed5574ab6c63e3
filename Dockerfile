# syntax=docker/dockerfile:1
#
# jumpcloud-scim: the SCIM 2.0 service in front of JumpCloud, as a small non-root image.
#
#   docker build -t jumpcloud-scim .
#   docker run --rm -p 127.0.0.1:8080:8080 jumpcloud-scim demo --listen 0.0.0.0:8080 --token demo-token-123
#
# `serve` (the default command) reads its configuration from JCSCIM_* variables and `--config FILE`; give it
# its secrets as files (JCSCIM_JUMPCLOUD__API_KEY_FILE, JCSCIM_AUTH__TOKENS_FILE). docker-compose.yml and
# deploy/kubernetes/ show both.

# ---- build: the official Rust image (Debian 12, the same glibc as the runtime image) -------------------------
FROM rust:1-bookworm AS build
WORKDIR /src
# Only what the build reads: a change to the README or the deploy files does not invalidate this layer.
COPY Cargo.toml Cargo.lock ./
COPY src ./src
COPY schemas ./schemas
# The registry and the target directory are BuildKit cache mounts: dependencies are downloaded and compiled
# once and reused by later builds, which recompile only this crate. The binary is copied out of the mount in
# the same step (a cache mount is not part of the image).
RUN --mount=type=cache,target=/usr/local/cargo/registry,sharing=locked \
    --mount=type=cache,target=/src/target,sharing=locked \
    cargo build --release --locked --bin jumpcloud-scim \
    && install -D -m 0755 target/release/jumpcloud-scim /out/jumpcloud-scim
# data_dir, made here and owned by the runtime user: the runtime image has no shell to make it. A new named
# volume mounted there starts with this owner.
RUN install -d -m 0750 -o 65532 -g 65532 /out/data

# ---- runtime: distroless cc (glibc, libgcc, CA certificates, no shell, no package manager) ------------------
FROM gcr.io/distroless/cc-debian12:nonroot

ARG VERSION=0.1.0
LABEL org.opencontainers.image.title="jumpcloud-scim" \
      org.opencontainers.image.description="SCIM 2.0 service provider in front of JumpCloud: reads from an in-memory snapshot, writes carried upstream with classified retries" \
      org.opencontainers.image.version="${VERSION}" \
      org.opencontainers.image.licenses="MIT" \
      org.opencontainers.image.base.name="gcr.io/distroless/cc-debian12:nonroot"

COPY --from=build /out/jumpcloud-scim /usr/local/bin/jumpcloud-scim
COPY --from=build --chown=65532:65532 /out/data /var/lib/jumpcloud-scim

# The distroless "nonroot" user, by number, so that Kubernetes' runAsNonRoot can check it.
USER 65532:65532

# Listen on every interface inside the container; the published port decides who reaches it. Every published
# snapshot is saved in data_dir and served at the next start, even while JumpCloud is down.
ENV JCSCIM_LISTEN=0.0.0.0:8080 \
    JCSCIM_DATA_DIR=/var/lib/jumpcloud-scim
VOLUME ["/var/lib/jumpcloud-scim"]
EXPOSE 8080

# The binary asks its own /healthz at JCSCIM_LISTEN (0.0.0.0 becomes 127.0.0.1): no curl in the image.
HEALTHCHECK --interval=15s --timeout=6s --start-period=30s --retries=3 \
    CMD ["jumpcloud-scim", "healthcheck"]

# Exec form: the service is PID 1 and gets SIGTERM itself (it shuts down gracefully within 10 s).
ENTRYPOINT ["jumpcloud-scim"]
CMD ["serve"]
