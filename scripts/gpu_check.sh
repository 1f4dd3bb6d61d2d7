#!/usr/bin/env bash
# Check a GPU setup: on every GPU that d2l.try_all_gpus() would use, time
# forward and backward passes of the chapter's BERT and print the sentence
# pairs per second. Exits nonzero if there is no usable GPU or a pass fails.
# --cpu checks the CPU instead. Uses .venv (MXNET_WHEEL=mxnet-cu112 bash
# tools/setup.sh); conda readers run: python scripts/gpu_check.py
set -euo pipefail
cd "$(dirname "$0")/.."
if [ ! -x .venv/bin/python ]; then
  echo "gpu_check: no .venv; first run: MXNET_WHEEL=mxnet-cu112 bash tools/setup.sh" >&2
  exit 1
fi
exec .venv/bin/python scripts/gpu_check.py "$@"
