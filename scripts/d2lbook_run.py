"""Run d2lbook 1.0.3 with two fixes for this book.

1. d2lbook reserves GPUs for any notebook that mentions try_all_gpus() and
   refuses to evaluate it when the machine has none. The notebooks fall back
   to the CPU, so we cap the reservation at the GPUs that exist.
2. d2lbook adds a Google Analytics tracker to every page even when no tracking
   id is configured; this book sets none, so we leave the tracker out.
3. Its copy buttons load their icon from GitHub; we draw it with the Font
   Awesome that the theme already ships, so the book needs no network.

Usage: python scripts/d2lbook_run.py build html   (same arguments as d2lbook)
"""

import re

from d2lbook import main, resource, sphinx_template

_requested_gpus = resource.get_notebook_gpus


def _available_gpus(notebook, max_gpus):
    """Return the GPUs a notebook asks for, but no more than exist."""
    return min(_requested_gpus(notebook, max_gpus),
               len(resource.get_available_gpus()))


resource.get_notebook_gpus = _available_gpus
sphinx_template.google_tracker = ''
_GITHUB_ICON = re.compile(r'<img src="https://raw\.githubusercontent\.com/[^"]*'
                          r'copy-button\.svg"[^>]*>')
sphinx_template.copybutton_js = _GITHUB_ICON.sub(
    '<i class="fas fa-copy"></i>', sphinx_template.copybutton_js)

if __name__ == '__main__':
    main.main()
