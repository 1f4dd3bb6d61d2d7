#!/usr/bin/env bash
# Create benchmarks/.venv-d2l0176 holding d2l 0.17.6, the baseline that
# bench_dataset.py compares against. d2l 0.17.6 pins versions that do not
# install on Python 3.11, so it goes in with --no-deps next to the packages its
# MXNet module imports.
set -euo pipefail
venv="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)/.venv-d2l0176"
"${PYTHON:-python3}" -m venv "$venv"
echo '*' > "$venv/.gitignore"  # keep the whole venv out of git
"$venv/bin/pip" install --quiet mxnet==1.9.1 numpy==1.23.5 'matplotlib<3.10' \
    pandas requests ipython
"$venv/bin/pip" install --quiet --no-deps d2l==0.17.6
# Import from / so that the project's own d2l package cannot shadow it.
(cd / && "$venv/bin/python" -c \
    'import d2l; from d2l import mxnet; print("d2l", d2l.__version__, "in", d2l.__file__)')
