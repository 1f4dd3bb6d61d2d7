#!/usr/bin/env bash
# The tests: ruff over the code and the notebooks' cells, unit tests of the
# library, the check that the notebooks and d2l/mxnet.py agree, every notebook
# executed cell by cell with nbval, and the HTML book built and opened in
# headless Chromium. Runs offline: WikiText-2
# comes from the project's own fixture through tools/offline_hub.py.
set -euo pipefail
cd "$(dirname "$0")/.."
bash tools/setup.sh
bash tools/npm_assets.sh
if ! command -v chromium >/dev/null; then
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
    echo "Installing Debian's chromium for the browser test..."
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null
  else
    echo "The browser test needs chromium on PATH (Debian: apt-get install chromium)." >&2
    exit 1
  fi
fi
source tools/env.sh
# The notebooks pretrain for 200 steps instead of the recipe's 2,000: every
# cell still runs, in minutes (the book build always runs the full recipe).
export D2L_PRETRAIN_STEPS=200
echo "Linting all Python files with ruff ..."
ruff check .
echo "Words of prose in the chapter (code cells and display equations left out):"
python tools/word_count.py

# Build the book from a copy of the sources so that your _build/ is untouched.
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
git ls-files --cached --others --exclude-standard -z | xargs -0 cp --parents -t "$work"
echo "Building the HTML book offline in $work ..."
if ! (cd "$work" && python tools/offline_hub.py -- \
        python tools/d2lbook_run.py build html) > "$work/book.log" 2>&1; then
  tail -n 60 "$work/book.log"
  echo "The book build failed (log above)." >&2
  exit 1
fi
python tools/md2ipynb.py "$work/nbval" > /dev/null
echo "Linting every code cell of the notebooks with ruff ..."
ruff check --config pyproject.toml "$work/nbval"
BOOK_HTML_DIR="$work/_build/html" python tools/offline_hub.py -- \
  python -m pytest -p no:cacheprovider --rootdir . -c pyproject.toml \
  tests "$work/nbval" --nbval-lax --nbval-current-env
