# The two commands of the quick start are `make run` and `make test`.
CARGO ?= cargo
# Tests use nextest when it is installed (one process per test, better isolation), cargo test otherwise.
NEXTEST := $(shell $(CARGO) nextest --version >/dev/null 2>&1 && echo yes)

.PHONY: run test lint fmt check bench simulate api-client

run:
	$(CARGO) run --release -p server -- serve

test:
	scripts/test-tools.sh
ifeq ($(NEXTEST),yes)
	$(CARGO) nextest run --workspace --no-fail-fast
else
	$(CARGO) test --workspace --no-fail-fast
endif
	SIM_TOTAL_STEPS=100000 $(CARGO) run --quiet -p simulation --bin simulate
	scripts/schemathesis.sh
	scripts/replicas.sh

lint:
	$(CARGO) fmt --all -- --check
	$(CARGO) clippy --workspace --all-targets -- -D warnings
	scripts/check-layers.sh
	scripts/check-msrv.sh
	scripts/check-deny.sh
	scripts/check-deploy.sh
	scripts/check-package.sh
	scripts/check-semver.sh
	scripts/check-docs.sh

fmt:
	$(CARGO) fmt --all

check:
	$(CARGO) check --workspace --all-targets

# Regenerates crates/api-client/src/generated.rs from the document the server serves; the test it
# runs fails, in `make test` and CI, whenever the checked-in client and the document differ.
api-client:
	UPDATE_API_CLIENT=1 $(CARGO) test -p api-tests --test api -- openapi::the_generated_client_matches_the_served_document

# The pgbench baseline and the service's scenarios, then 1-3 instances, PgBouncer and a read replica;
# writes docs/benchmarks.md and the measured part of docs/scaling.md (bench/run.sh, bench/scale.sh).
bench:
	bench/run.sh
	bench/scale.sh

# The deterministic simulation (docs/simulation.md): SIM_TOTAL_STEPS steps (10^6 by default) from
# a random seed, or one seed replayed with SIM_SEED (and SIM_STEPS, its length). SIM_STORE=postgres
# runs it on PostgreSQL (3,000 steps by default). `make test` runs 10^5 steps in memory. The
# variables reach the binary through the environment.
simulate:
	$(CARGO) run --release -p simulation --bin simulate
