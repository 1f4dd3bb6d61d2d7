"""Run d2lbook 1.0.3 with two fixes for this book.

1. d2lbook reserves GPUs for any notebook that mentions try_all_gpus() and
   refuses to evaluate it when the machine has none. The notebooks fall back
   to the CPU, so we cap the reservation at the GPUs that exist.
2. d2lbook adds a Google Analytics tracker to every page even when no tracking
   id is configured; this book sets none, so we leave the tracker out.

Usage: python scripts/d2lbook_run.py build html   (same arguments as d2lbook)
"""

from d2lbook import main, resource, sphinx_template

_requested_gpus = resource.get_notebook_gpus


def _available_gpus(notebook, max_gpus):
    """Return the GPUs a notebook asks for, but no more than exist."""
    return min(_requested_gpus(notebook, max_gpus),
               len(resource.get_available_gpus()))


resource.get_notebook_gpus = _available_gpus
sphinx_template.google_tracker = ''

if __name__ == '__main__':
    main.main()
