#!/usr/bin/env bash
# The main job: set up .venv, regenerate d2l/mxnet.py from the notebooks,
# execute every notebook and render the HTML book into _build/html.
# Notebooks run on all GPUs MXNet sees, or on the CPU when there is none.
set -euo pipefail
cd "$(dirname "$0")/.."
bash tools/setup.sh
bash tools/npm_assets.sh
source tools/env.sh
python tools/d2lbook_run.py build lib
python tools/d2lbook_run.py build html
echo "The book is in $PWD/_build/html/index.html"
