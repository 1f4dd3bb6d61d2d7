#!/usr/bin/env bash
# Create .venv in the repository root and install the pinned environment, the
# test tools and the d2l package (editable) into it. MXNet's CPU build is the
# default; MXNET_WHEEL=mxnet-cu112 installs the CUDA 11.2 build instead.
set -euo pipefail
cd "$(dirname "$0")/.."
python=${PYTHON:-python3}
mxnet=${MXNET_WHEEL:-mxnet}
if [ ! -x .venv/bin/python ]; then
  "$python" -m venv .venv
fi
pip=(.venv/bin/python -m pip --disable-pip-version-check)
# Both wheels install the module `mxnet`: never keep the other one around.
for other in mxnet mxnet-cu112; do
  if [ "$other" != "$mxnet" ] && "${pip[@]}" show -q "$other" 2>/dev/null; then
    "${pip[@]}" uninstall -q -y "$other"
  fi
done
reqs=$(mktemp)
trap 'rm -f "$reqs"' EXIT
sed "s/^mxnet==/${mxnet}==/" requirements.txt > "$reqs"
grep -v '^-r' requirements-test.txt >> "$reqs"
"${pip[@]}" install --quiet -r "$reqs"
"${pip[@]}" install --quiet --no-deps -e .
