# Sourced by the build and test scripts: put .venv and its pandoc on PATH.
export PATH="$PWD/.venv/bin:$(.venv/bin/python -c 'import os, pypandoc; print(os.path.dirname(pypandoc.get_pandoc_path()))'):$PATH"
