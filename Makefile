# kube-idp: common tasks. `make` lists them.

CARGO      ?= cargo
MANIFESTS  ?= deploy/examples
STATE_DIR  ?= .state
ISSUER     ?= http://127.0.0.1:8080
LISTEN     ?= 127.0.0.1:8080

.DEFAULT_GOAL := help
.PHONY: help run build deps test lint fmt crds

help: ## List the targets
	@awk 'BEGIN {FS = ":.*## "} /^[a-zA-Z_-]+:.*## / {printf "  \033[36m%-12s\033[0m %s\n", $$1, $$2}' $(MAKEFILE_LIST)

run: ## Serve the example manifests on $(LISTEN), keys kept in $(STATE_DIR)
	$(CARGO) run --bin kube-idp -- serve --manifests $(MANIFESTS) --state-dir $(STATE_DIR) \
		--issuer $(ISSUER) --listen $(LISTEN)

build: ## Build the release binary
	$(CARGO) build --release --locked

deps: ## Install what the tests need: Python packages in .venv, missing Debian packages
	@tests/deps.sh

test: deps ## Run every test: unit, HTTP flows with real relying parties, Kubernetes double
	KUBE_IDP_TEST_PYTHON=$(CURDIR)/.venv/bin/python $(CARGO) test --locked --all-targets

lint: ## rustfmt and clippy, warnings are errors
	$(CARGO) fmt --check
	$(CARGO) clippy --locked --all-targets -- -D warnings

fmt: ## Format the code
	$(CARGO) fmt

crds: ## Regenerate crds/ from the Rust types
	$(CARGO) run --quiet --bin kube-idp -- crd > crds/users.iam.kubesphere.io.yaml
