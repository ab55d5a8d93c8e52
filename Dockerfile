# syntax=docker/dockerfile:1.7
# mcp-edge: a two-stage build. The builder compiles a release binary (cmake is needed by
# pingora's native parts); the runtime is distroless (glibc, CA certificates, no shell),
# runs as a non-root user and works with a read-only root filesystem (it writes nothing
# unless the audit sink is a file). Mount the policy at /etc/mcp-edge/mcp-edge.yaml (or pass
# --config) and the certificate at /etc/mcp-edge/tls/.

FROM rust:1.95-bookworm AS builder
RUN apt-get update \
    && apt-get install -y --no-install-recommends cmake=3.25.* \
    && rm -rf /var/lib/apt/lists/*
WORKDIR /src

# Dependencies first, in their own layer: it is rebuilt only when Cargo.toml or Cargo.lock
# change, not on every source edit.
COPY Cargo.toml Cargo.lock build.rs ./
COPY .cargo ./.cargo
# Profile-guided optimisation with the profile in pgo/ (bench/pgo.sh refreshes it; about
# half the user CPU per request, bench/README.md "PGO"). Every crate is built with it, so
# it comes before the dependency layer; mcp-edge is built without features, as trained.
COPY pgo ./pgo
ENV RUSTFLAGS="-Cprofile-use=/src/pgo/mcp-edge.profdata -Cllvm-args=-no-pgo-warn-mismatch"
# Stub sources: cargo reads every target of the manifest, and the one whose path it infers
# (the criterion bench) must exist, though only `cargo bench` builds it; the stub stays for
# the build below. .ci/check-packaging runs this RUN's commands with `cargo check`.
RUN mkdir src benches \
    && echo 'fn main() {}' > src/main.rs \
    && touch src/lib.rs \
    && echo 'fn main() {}' > benches/hot_paths.rs \
    && cargo build --release --locked --bin mcp-edge \
    && rm -rf src

COPY src ./src
COPY certs.example ./certs.example
ARG MCP_EDGE_GIT_COMMIT=unknown
ENV MCP_EDGE_GIT_COMMIT=${MCP_EDGE_GIT_COMMIT}
RUN touch src/main.rs src/lib.rs \
    && cargo build --release --locked --bin mcp-edge \
    && cp target/release/mcp-edge /mcp-edge

FROM gcr.io/distroless/cc-debian12:nonroot
COPY --from=builder /mcp-edge /usr/local/bin/mcp-edge
USER 65532:65532
EXPOSE 8443 9901
HEALTHCHECK --interval=10s --timeout=3s --start-period=5s --retries=3 \
    CMD ["/usr/local/bin/mcp-edge", "healthcheck"]
ENTRYPOINT ["/usr/local/bin/mcp-edge"]
CMD ["run", "--config", "/etc/mcp-edge/mcp-edge.yaml"]
