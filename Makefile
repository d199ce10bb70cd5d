# kspikese: every target that needs Python depends on `install`, so any of them can be the first
# command typed on a fresh clone.
SHELL      := /bin/bash
PYTHON     ?= $(shell command -v python3.11 || command -v python3)
VENV       ?= .venv
PY         := $(VENV)/bin/python
STAMP      := $(VENV)/.kspikese-installed
DATA_DIR   ?= data
RESULTS    ?= results
SEED       ?= 0
CORPUS_SEED ?= 0
DATA       ?= default
QUICK      ?= 0
PROFILE    ?= cpu
FORCE      ?= 0
export TF_USE_LEGACY_KERAS := 1
export TF_CPP_MIN_LOG_LEVEL := 2
export KSPIKESE_DATA_DIR := $(abspath $(DATA_DIR))

PIPELINE_FLAGS = --data $(DATA) --results $(RESULTS) --profile $(PROFILE) \
            $(if $(filter 1,$(QUICK)),--quick) $(if $(filter 1,$(FORCE)),--force) \
            $(if $(VCTK_ROOT),--vctk-root $(VCTK_ROOT)) $(if $(TIMIT_ROOT),--timit-root $(TIMIT_ROOT))
RUN_FLAGS = --seed $(SEED) $(PIPELINE_FLAGS)
# STRATEGY=default|mirrored|multi-worker: the tf.distribute strategy of training (reproduce only;
# multi-worker reads the cluster from TF_CONFIG, see the README's "Many devices and clusters")
STRATEGY   ?= default
TRAIN_FLAGS = $(RUN_FLAGS) --strategy $(STRATEGY)

.PHONY: help install test test-slow data bench energy enhance-demo clean-venv \
        reproduce-table1 reproduce-table2 reproduce-table3 reproduce-table4 reproduce-all seeds omega-search pareto score ship-weights \
        nengo-env nengo

help:  ## list the targets
	@grep -E '^[a-z0-9-]+:.*## ' $(MAKEFILE_LIST) | sed 's/:.*## /\t/' | column -t -s $$'\t'

install: $(STAMP)  ## create .venv (if missing) and install kspikese with pinned versions

$(STAMP): setup.cfg pyproject.toml constraints.txt
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade "pip>=24"
	$(PY) -m pip install --quiet -c constraints.txt -e ".[test]"
	$(PY) -m pip install --quiet --no-deps pyrnnoise==0.4.5  # RNNoise peer: its librnnoise.so only
	@touch $(STAMP)

test: install  ## fast test suite (the one CI runs)
	$(PY) -m pytest -q

test-slow: install  ## the long tests too
	$(PY) -m pytest -q -m "slow or not slow"

data: install  ## build the default corpus into $(DATA_DIR)/ (no-op when built)
	$(PY) -m kspikese data --out $(DATA_DIR) --seed $(CORPUS_SEED)

bench: install  ## benchmarks -> results/bench/*.md
	$(PY) -m kspikese bench --results $(RESULTS) $(if $(filter 1,$(QUICK)),--quick)

reproduce-table1: install  ## Table 1: Wave-U-Net on vctk-like mixtures
	$(PY) -m kspikese reproduce table1 $(TRAIN_FLAGS)

reproduce-table2: install  ## Table 2: Wave-U-Net on timit-ssn mixtures
	$(PY) -m kspikese reproduce table2 $(TRAIN_FLAGS)

reproduce-table3: install  ## Table 3: Conv-TasNet on vctk-like mixtures
	$(PY) -m kspikese reproduce table3 $(TRAIN_FLAGS)

reproduce-table4: install  ## Table 4: Conv-TasNet on timit-ssn mixtures
	$(PY) -m kspikese reproduce table4 $(TRAIN_FLAGS)

reproduce-all: reproduce-table1 reproduce-table2 reproduce-table3 reproduce-table4  ## all four tables

SEEDS_TABLE ?= table1
SEEDS ?= 0 1 2
seeds: install  ## $(SEEDS_TABLE) over the seeds $(SEEDS): mean ± SD of every measure -> results/<table>/seeds.md
	$(PY) -m kspikese seeds $(SEEDS_TABLE) --seeds $(SEEDS) $(PIPELINE_FLAGS)

omega-search: install  ## the paper's grid over omega (dt), x input scale
	$(PY) -m kspikese omega-search $(RUN_FLAGS)

PARETO_TABLE ?= table1
pareto: install  ## accuracy-energy front of $(PARETO_TABLE)'s SNN over the rate-control knobs -> results/pareto/
	$(PY) -m kspikese pareto --table $(PARETO_TABLE) $(RUN_FLAGS) $(if $(PARETO_ANN),--ann $(PARETO_ANN))

SCORE_TABLE ?= table1
SPLIT ?= valid
score: install  ## $(SCORE_TABLE)'s finished run scored on its $(SPLIT) split -> results/runs/<run>/scores-$(SPLIT).md
	$(PY) -m kspikese score $(SCORE_TABLE) --split $(SPLIT) $(filter-out --force,$(RUN_FLAGS)) --data-dir $(DATA_DIR)

energy: install  ## Table 5: Joules per inference, ANN vs SNN
	$(PY) -m kspikese energy $(RUN_FLAGS)

# QUICK=1 enhances with the QUICK Table 1 run's fine-tuned SNN instead of the shipped one
enhance-demo: install  ## enhance the default test set with the shipped SNN -> results/enhanced
	$(PY) -m kspikese enhance $(DATA_DIR)/default/vctk-like/test/noisy -o $(RESULTS)/enhanced \
	    $(if $(filter 1,$(QUICK)),--model $(RESULTS)/runs/table1-quick-default-seed$(SEED))

# QUICK=1 ships the QUICK runs into $(QUICK_WEIGHTS), never into kspikese/weights/
QUICK_WEIGHTS ?= $(RESULTS)/weights-quick
ship-weights: install  ## export Tables 1 and 3's four models into kspikese/weights/ (float16 + card)
	$(PY) -m kspikese ship table1 table3 $(filter-out --force,$(RUN_FLAGS)) --data-dir $(DATA_DIR) \
	    $(if $(filter 1,$(QUICK)),--weights-dir $(QUICK_WEIGHTS))

# --- Nengo (issue 8): nengo-dl needs TF 2.12, so it has its own environment -----------------
NENGO_VENV ?= .venv-nengo
NPY        := $(NENGO_VENV)/bin/python
NENGO_STAMP := $(NENGO_VENV)/.kspikese-nengo-installed
NENGO_TABLE ?= table1
RUN_NAME    = $(1)$(if $(filter 1,$(QUICK)),-quick)-$(DATA)-seed$(SEED)
NENGO_CKPT ?= $(RESULTS)/runs/$(call RUN_NAME,$(NENGO_TABLE))/finetune/finetuned.keras
NENGO_NET  ?= $(RESULTS)/nengo/$(call RUN_NAME,$(NENGO_TABLE))
NENGO_UTTERANCES ?= 8

nengo-env: $(NENGO_STAMP)  ## create .venv-nengo: TF 2.12.1, nengo 3.2.0, nengo-dl 3.6.0, kspikese

$(NENGO_STAMP): requirements-nengo.txt setup.cfg pyproject.toml
	@test -x $(NPY) || $(PYTHON) -m venv $(NENGO_VENV)
	$(NPY) -m pip install --quiet --upgrade "pip>=24"
	$(NPY) -m pip install --quiet --no-deps -r requirements-nengo.txt
	$(NPY) -m pip install --quiet --no-deps -e .
	@touch $(NENGO_STAMP)

nengo: install nengo-env  ## run the trained SNN in Nengo: export-nengo + nengo-eval -> results/nengo/
	$(NPY) -m kspikese export-nengo $(NENGO_CKPT) -o $(NENGO_NET) \
	    --data $(DATA_DIR)/$(DATA)/vctk-like/test --utterances $(NENGO_UTTERANCES) \
	    --keras-python $(PY)
	$(NPY) -m kspikese nengo-eval $(NENGO_NET)

clean-venv:  ## remove the environment
	rm -rf $(VENV)
