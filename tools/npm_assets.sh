#!/usr/bin/env bash
# Install the book's browser assets, pinned in static/npm/package-lock.json
# (KaTeX for the math, axe-core for the browser test), into .venv/npm with npm.
set -euo pipefail
cd "$(dirname "$0")/.."
dest=.venv/npm
if cmp -s static/npm/package-lock.json "$dest/package-lock.json" \
    && [ -d "$dest/node_modules" ]; then
  exit 0
fi
if ! command -v npm >/dev/null; then
  echo "The book needs npm for KaTeX and axe-core (Debian: apt-get install npm)." >&2
  exit 1
fi
rm -rf "$dest"
mkdir -p "$dest"
cp static/npm/package.json static/npm/package-lock.json "$dest/"
npm ci --prefix "$dest" --no-audit --no-fund --loglevel=error
