#!/usr/bin/env bash
# Create .venv in the repository root and install the pinned environment, the
# test tools and the d2l package (editable) into it. MXNet's CPU build is the
# default; MXNET_WHEEL=mxnet-cu112 installs the CUDA 11.2 build instead, with
# the CUDA libraries it links from NVIDIA's wheels (requirements-gpu.txt),
# linked next to libmxnet.so: a GPU machine then needs only the NVIDIA driver.
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
    # first the links of tools/link_cuda_libs.py, which pip does not know
    find .venv/lib/python3*/site-packages/mxnet -maxdepth 1 -type l \
      -lname '../nvidia/*' -delete
    "${pip[@]}" uninstall -q -y "$other"
  fi
done
reqs=$(mktemp)
trap 'rm -f "$reqs"' EXIT
sed "s/^mxnet==/${mxnet}==/" requirements.txt > "$reqs"
grep -v '^-r' requirements-test.txt >> "$reqs"
if [ "$mxnet" = mxnet-cu112 ]; then
  cat requirements-gpu.txt >> "$reqs"
fi
"${pip[@]}" install --quiet -r "$reqs"
"${pip[@]}" install --quiet --no-deps -e .
if [ "$mxnet" = mxnet-cu112 ]; then
  .venv/bin/python tools/link_cuda_libs.py
fi
