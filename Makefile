# The project's commands. `make run` and `make test` set everything up from a bare Python 3.11.
PYTHON ?= python3.11
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
# Python caches what it compiles (__pycache__, and pytest its rewritten test modules) even where
# the shell asks it not to: a run starts hundreds of Python processes (actors, routers, gunicorn,
# gateway-cli), and each compiled the product again, ~0.2 CPU-s a start
unexport PYTHONDONTWRITEBYTECODE

.PHONY: run stop status test fuzz chaos lint fmt proto bench bench-peers clean setup browser peers federation vectors install

setup: $(STAMP)

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --disable-pip-version-check uv==0.13.9
	$(BIN)/uv pip install --quiet --compile-bytecode --python $(BIN)/python -e '.[dev]'
	touch $(STAMP)

## install: the gateway as an operator runs it (docs/operating.md): a wheel of this checkout,
##          installed with its dependencies and no dev tools (not editable) into a new virtualenv
##          $(PREFIX)/venv-<version>-<commit>, never over an existing one; $(PREFIX)/venv links to
##          the first one made (an upgrade switches the link while the gateway is stopped);
##          setuptools' build/ is emptied first (a module deleted since must not be packaged)
PREFIX ?= /opt/fmgw
RELEASE ?= $(shell sed -n 's/^version = "\(.*\)"/\1/p' pyproject.toml)-$(shell git rev-parse --short HEAD 2>/dev/null || echo src)$(shell git diff --quiet HEAD 2>/dev/null || echo -dirty)
install:
	@set -e; venv="$(abspath $(PREFIX))/venv-$(RELEASE)"; \
	test ! -e "$$venv" || { echo "make install: $$venv exists (RELEASE=<name> for another)"; exit 1; }; \
	wheels=$$(mktemp -d); trap 'rm -rf "$$wheels"' EXIT; \
	rm -rf build; $(PYTHON) -m pip wheel --quiet --no-deps --wheel-dir "$$wheels" . ; \
	mkdir -p "$(PREFIX)"; $(PYTHON) -m venv "$$venv"; \
	"$$venv/bin/python" -m pip install --quiet --upgrade pip; \
	"$$venv/bin/python" -m pip install --quiet "$$wheels"/fmgw-*.whl; \
	test -e "$(PREFIX)/venv" || ln -s "venv-$(RELEASE)" "$(PREFIX)/venv"; \
	echo "$$venv"

## run: set up .venv and the real peers, start the local world (bitcoind, fedimintd federations
##      alpha and beta, lnd nodes alice -> gateway -> bob) and the gateway under supervisord, in
##      the background, and make it ready: channels, the gateway connected and funded, a funded
##      fedimint-cli user per federation (idempotent; deploy/devnet). GUARDIANS=4: four per
##      federation; MODULES=v1: mint, wallet and ln (fedimintd 0.11's set)
run: $(STAMP) peers
	$(BIN)/python -m deploy.devnet run --guardians $(GUARDIANS) --modules $(MODULES)

## stop / status: stop the local world / list its programs
stop: $(STAMP)
	$(BIN)/python -m deploy.devnet stop

status: $(STAMP)
	$(BIN)/python -m deploy.devnet status


## test: set up, lint, check generated code, install the real peers if missing, run the test suite
##       on TEST_WORKERS pytest-xdist workers (tests/scheduling.py; browser tests use Debian's chromium)
TEST_WORKERS ?= 4
test: $(STAMP) lint browser peers
	$(BIN)/python -m pytest -q -n $(TEST_WORKERS) --dist loadscope

## browser: Debian's chromium for the dashboard's browser tests (Playwright drives it; no download)
browser:
	@command -v chromium >/dev/null || { \
	  SUDO=$$( [ "$$(id -u)" = 0 ] || echo sudo ); \
	  $$SUDO apt-get update -qq && DEBIAN_FRONTEND=noninteractive $$SUDO apt-get install -y -qq chromium >/dev/null; }

## fuzz: the property and fuzz tests, randomized and FUZZ_SCALE (20) times longer than in `make test`
##       (which runs them derandomized). Prints its seed; `make fuzz SEED=n` repeats a run.
FUZZ_SCALE ?= 20
fuzz: $(STAMP) browser
	@seed=$${SEED:-$$($(BIN)/python -c 'import secrets; print(secrets.randbits(32))')}; \
	echo "make fuzz: seed $$seed (repeat with: make fuzz SEED=$$seed)"; \
	FMGW_HYPOTHESIS_PROFILE=fuzz FMGW_FUZZ_SCALE=$(FUZZ_SCALE) \
	  $(BIN)/python -m pytest -q -m fuzz -p no:cacheprovider --hypothesis-seed=$$seed \
	  --timeout=3600 || { echo "make fuzz: failed with seed $$seed (make fuzz SEED=$$seed)"; exit 1; }

## chaos: the long chaos run (tests/chaos/): PAYMENTS (1000) mixed payments through the gateway on
##        real federations and lnd while its processes are killed and guardians restarted; prints
##        its seed and the books (which must balance to the msat). `make chaos SEED=n` repeats one.
PAYMENTS ?= 1000
chaos: $(STAMP) peers
	$(BIN)/python -m tests.chaos --payments $(PAYMENTS) $${SEED:+--seed $$SEED}

## peers: the real peers the tests run beside, at pinned versions, into ~/.cache/fmgw-peers
##        (FMGW_PEER_CACHE): fedimintd + fedimint-cli (cargo, ~35 min the first time), lnd +
##        lncli and btcd + btcctl (Go module proxy, ~15 min), bitcoind (Bitcoin Knots from
##        Debian unstable, unpacked privately). Nothing to do when present.
peers: $(STAMP)
	$(BIN)/python -m peers install

## vectors: test vectors from the real fedimint 0.13.0 crates into tests/fmclient/data/ (commit them),
##          and a real 4-guardian federation's signed sessions (peers/session_vectors.py, 1-2 min)
vectors: peers
	export CARGO_TARGET_DIR="$$($(BIN)/python -c 'from peers.cache import fedimint_target; print(fedimint_target())')"; \
	cargo run --quiet --release --locked --manifest-path peers/fedimint/Cargo.toml \
	  --bin fedimint-vectors > tests/fmclient/data/tbs_vectors.json && \
	cargo run --quiet --release --locked --manifest-path peers/fedimint/Cargo.toml \
	  --bin fedimint-tpe-vectors > tests/fmclient/data/tpe_vectors.json && \
	cargo run --quiet --release --locked --manifest-path peers/fedimint/Cargo.toml \
	  --bin fedimint-lnv2-vectors > tests/fmclient/data/lnv2_vectors.json && \
	cargo run --quiet --release --locked --manifest-path peers/fedimint/Cargo.toml \
	  --bin fedimint-lnv1-vectors > tests/fmclient/data/lnv1_vectors.json && \
	cargo run --quiet --release --locked --manifest-path peers/fedimint/Cargo.toml \
	  --bin fedimint-mintv1-vectors > tests/fmclient/data/mintv1_vectors.json && \
	cargo run --quiet --release --locked --manifest-path peers/fedimint/Cargo.toml \
	  --bin fedimint-walletv1-vectors > tests/fmclient/data/walletv1_vectors.json && \
	cargo run --quiet --release --locked --manifest-path peers/fedimint/Cargo.toml \
	  --bin fedimint-derive-vectors > tests/fmclient/data/derive_vectors.json && \
	PYTHONPATH=. $(BIN)/python -m peers.session_vectors tests/fmclient/data/session-outcomes.json

## federation: a real bitcoind and fedimintd federation on loopback until Ctrl-C (GUARDIANS=4;
##             MODULES=v1 for mint, wallet and ln, the shape of fedimintd 0.11's federations)
GUARDIANS ?= 1
MODULES ?= v2
federation: peers
	$(BIN)/python -m peers federation --guardians $(GUARDIANS) --modules $(MODULES)

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

fmt: $(STAMP)
	$(BIN)/ruff check --fix .
	$(BIN)/ruff format .

## proto: regenerate Python from proto/*.proto into proto/gwproto/
proto: $(STAMP)
	$(BIN)/python proto/generate.py

## bench-peers: the peers only the benchmarks need: fedimint's own gatewayd and gateway-cli
##              0.13.0 (peers/gatewayd, ~40 min once after fedimintd), into the peer cache
bench-peers: $(STAMP) peers
	$(BIN)/python -m peers install --bench

bench: $(STAMP) bench-peers
	@for b in bench/[!_]*.py; do echo "== $$b"; PYTHONPATH=. $(BIN)/python $$b || exit 1; done

clean:
	rm -rf $(VENV) .run .data .devnet .pytest_cache .ruff_cache test-output
