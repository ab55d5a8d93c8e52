# The project's front door. `make demo` runs the edge in front of a stand-in API;
# `make test` passes the tests. Both work on a fresh Debian machine with only the Rust
# toolchain: `setup` installs what is missing (cmake for pingora's native parts, openssl
# for the TLS handshake tests, redis-server for the shared-store tests, which start their
# own private one).

CARGO ?= cargo
SUDO := $(shell [ "$$(id -u)" = 0 ] || echo sudo)

.PHONY: setup demo test lint packaging tls-check conformance inspector-smoke check fmt bench microbench fuzz fuzz-replay fuzz-merge

setup:
	@missing=""; \
	command -v cmake >/dev/null 2>&1 || missing="$$missing cmake"; \
	command -v openssl >/dev/null 2>&1 || missing="$$missing openssl"; \
	command -v cc >/dev/null 2>&1 || missing="$$missing build-essential"; \
	command -v redis-server >/dev/null 2>&1 || missing="$$missing redis-server"; \
	if [ -n "$$missing" ]; then \
		echo "installing:$$missing"; \
		$(SUDO) apt-get update -qq && DEBIAN_FRONTEND=noninteractive $(SUDO) apt-get install -y -qq $$missing; \
	fi

demo: setup
	$(CARGO) run --locked --bin mcp-edge -- demo

test: setup
	$(CARGO) test --locked

lint: setup
	$(CARGO) fmt --check
	$(CARGO) clippy --locked --all-targets -- -D warnings

# The Dockerfile and Helm chart checks (hadolint, helm lint/template, kubernetes-validate).
packaging: setup
	$(CARGO) build --locked --bin mcp-edge
	.ci/check-packaging

# The TLS listener against Mozilla's intermediate profile (sslyze, installed into a venv
# under ~/.cache on first use) and its ALPN (openssl s_client). See OPERATIONS.md, TLS posture.
tls-check: setup
	@python3 -c 'import venv, ensurepip' 2>/dev/null || { \
		echo "installing: python3-venv"; \
		$(SUDO) apt-get update -qq && DEBIAN_FRONTEND=noninteractive $(SUDO) apt-get install -y -qq python3-venv; }
	$(CARGO) build --locked --bin mcp-edge
	.ci/tls-check

# The official MCP conformance suite, both eras, against the edge in front of a fixture API,
# compared with conformance/expected-failures.txt (see .ci/conformance). Needs npm; the suite
# and, when the machine's node is older than 22, Node 22 are installed under ~/.cache.
conformance: setup
	@command -v npm >/dev/null 2>&1 || { \
		echo "installing: npm"; \
		$(SUDO) apt-get update -qq && DEBIAN_FRONTEND=noninteractive $(SUDO) apt-get install -y -qq npm; }
	$(CARGO) build --locked --bin mcp-edge
	.ci/conformance

# A second real MCP client: the MCP Inspector CLI lists and calls a tool over TLS with a bearer
# token, passing --tool-arg companyId=42 to a string field (see .ci/inspector-smoke).
inspector-smoke: setup
	@command -v npm >/dev/null 2>&1 || { \
		echo "installing: npm"; \
		$(SUDO) apt-get update -qq && DEBIAN_FRONTEND=noninteractive $(SUDO) apt-get install -y -qq npm; }
	$(CARGO) build --locked --bin mcp-edge
	.ci/inspector-smoke

check: lint test packaging tls-check

fmt:
	$(CARGO) fmt

# Side-by-side benchmark against nginx with the same policy (see bench/README.md).
bench: setup
	bench/run.sh

# Criterion micro-benchmarks of the hot functions.
microbench: setup
	$(CARGO) bench --locked --bench hot_paths

# libFuzzer on each target for FUZZ_SECONDS (see fuzz/README.md); needs the nightly toolchain.
# New inputs go to fuzz/work/ (not committed), crashes to fuzz/artifacts/<target>/.
FUZZ_SECONDS ?= 60
FUZZ_TARGETS := policy jsonrpc forwarded_for cors template auth redact

fuzz: setup
	@command -v cargo-fuzz >/dev/null 2>&1 || $(CARGO) install --locked cargo-fuzz
	@for target in $(FUZZ_TARGETS); do \
		mkdir -p fuzz/work/$$target && \
		$(CARGO) +nightly fuzz run $$target fuzz/work/$$target fuzz/corpus/$$target -- \
			-max_total_time=$(FUZZ_SECONDS) -timeout=10 -print_final_stats=1 || exit 1; \
	done

# Folds what `make fuzz` found into the committed seeds, keeping only inputs that add coverage.
fuzz-merge:
	@for target in $(FUZZ_TARGETS); do \
		$(CARGO) +nightly fuzz run $$target fuzz/corpus/$$target fuzz/work/$$target -- -merge=1 || exit 1; \
	done

# Every committed seed and past crash through the targets' bodies, on stable (part of `make test`).
fuzz-replay: setup
	$(CARGO) test --locked --test fuzz_replay
