# kube-idp: common tasks. `make` lists them.

CARGO      ?= cargo
DOCKER     ?= docker
VERSION    := $(shell sed -n 's/^version = "\(.*\)"/\1/p' Cargo.toml | head -n 1)
IMAGE      ?= kube-idp:$(VERSION)
MANIFESTS  ?= deploy/examples
STATE_DIR  ?= .state
LISTEN     ?= 127.0.0.1:8080
ISSUER     ?= http://$(LISTEN)

.DEFAULT_GOAL := help
.PHONY: help run build deps test bench lint fmt crds chart image

help: ## List the targets
	@awk 'BEGIN {FS = ":.*## "} /^[a-zA-Z_-]+:.*## / {printf "  \033[36m%-12s\033[0m %s\n", $$1, $$2}' $(MAKEFILE_LIST)

run: ## Serve deploy/examples on 127.0.0.1:8080 (make run LISTEN=127.0.0.1:9000 for another port)
	$(CARGO) run --bin kube-idp -- serve --manifests $(MANIFESTS) --state-dir $(STATE_DIR) \
		--issuer $(ISSUER) --listen $(LISTEN)

build: ## Build the release binary
	$(CARGO) build --release --locked

deps: ## Install what the tests need: Python packages in .venv, missing Debian packages
	@tests/deps.sh

test: deps ## Run every test: unit, HTTP flows with real relying parties, Kubernetes double
	KUBE_IDP_TEST_PYTHON=$(CURDIR)/.venv/bin/python $(CARGO) test --locked --all-targets

bench: ## Measure Secret-to-usable latency and memory with 1,000 clients and 10,000 users
	$(CARGO) bench --locked --bench kubernetes

lint: ## rustfmt and clippy, warnings are errors
	$(CARGO) fmt --check
	$(CARGO) clippy --locked --all-targets -- -D warnings

fmt: ## Format the code
	$(CARGO) fmt

crds: ## Regenerate crds/ (and the chart's copy) from the Rust types
	$(CARGO) run --quiet --bin kube-idp -- crd > crds/users.iam.kubesphere.io.yaml
	cp crds/users.iam.kubesphere.io.yaml charts/kube-idp/crds/users.iam.kubesphere.io.yaml

chart: deps ## Render deploy/kube-idp.yaml from the chart
	.venv/bin/python tests/chart_render.py

image: ## Build the container image kube-idp:VERSION, the chart's default tag (needs Docker)
	@$(DOCKER) info >/dev/null 2>&1 || { echo "make image: no container engine is reachable \
	(\`$(DOCKER) info\` failed): start Docker, or set DOCKER=podman" >&2; exit 1; }
	$(DOCKER) build -t $(IMAGE) .
