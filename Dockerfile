# syntax=docker/dockerfile:1
# The `canary` image: one binary, `canary serve` for the cluster (deploy/helm/canary-judge) and
# every other subcommand for jobs. Multi-arch: `docker buildx build --platform
# linux/amd64,linux/arm64 .` builds each platform natively (under QEMU where it must).

# Build: the workspace's locked dependencies, a release binary, its man pages and completions.
FROM rust:1.95-bookworm AS build
WORKDIR /src
COPY . .
RUN --mount=type=cache,target=/usr/local/cargo/registry \
    --mount=type=cache,target=/src/target \
    cargo build --release --locked -p canary-cli \
    && install -D -m 0755 target/release/canary /out/canary \
    && scripts/package-extras.sh /out/canary /out/share

# Runtime: distroless (Debian 12's glibc, libgcc, CA certificates, a `nonroot` user; no shell,
# no package manager). The binary links only against what it holds (tested in
# canary-cli/tests/image.rs), and writes nothing, so the chart's read-only root filesystem holds.
FROM gcr.io/distroless/cc-debian12:nonroot
LABEL org.opencontainers.image.title="canary" \
      org.opencontainers.image.description="Decide whether a canary deployment may be promoted, and act on it." \
      org.opencontainers.image.source="https://github.com/canary-judge/canary" \
      org.opencontainers.image.licenses="Apache-2.0"
COPY --from=build /out/canary /usr/local/bin/canary
# Man pages and shell completions, for whoever copies them out of the image.
COPY --from=build /out/share /usr/local/share
USER 65532:65532
EXPOSE 8080
ENTRYPOINT ["/usr/local/bin/canary"]
CMD ["serve", "--config", "/etc/canary/canary.yaml"]
