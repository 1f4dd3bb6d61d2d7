"""Run d2lbook 1.0.3 with fixes for this book.

1. d2lbook reserves GPUs for any notebook that mentions try_all_gpus() and
   refuses to evaluate it when the machine has none. The notebooks fall back
   to the CPU, so we cap the reservation at the GPUs that exist.
2. d2lbook adds a Google Analytics tracker to every page even when no tracking
   id is configured; this book sets none, so we leave the tracker out.
3. Its copy buttons are links without a target that load their icon from
   GitHub; we make them keyboard-reachable buttons, placed above the code,
   with the Font Awesome icon that the theme already ships.
4. The pretraining section runs alone, first, on every core, and then the
   fine-tuning section, which loads the model it saved: the two take most of
   the build's time. d2lbook gives each notebook one of two CPU slots and
   starts the notebooks that ask for most slots first, in their order; we
   let these two ask for all of them, and give them OMP_NUM_THREADS of all
   cores unless that is set.
5. Its Sphinx configuration gets the book's own extension, tools/book_sphinx.py
   (KaTeX math, alt texts, the API page, notebooks, templates and styles), and
   a few settings: page titles without "documentation", plain-text outputs,
   no empty general index.

Usage: python tools/d2lbook_run.py build html   (same arguments as d2lbook)
"""

import os
import pathlib
import re

from d2lbook import main, resource, sphinx, sphinx_template

SCRIPTS = pathlib.Path(__file__).resolve().parent
_requested_gpus = resource.get_notebook_gpus


def _available_gpus(notebook, max_gpus):
    """Return the GPUs a notebook asks for, but no more than exist."""
    return min(_requested_gpus(notebook, max_gpus),
               len(resource.get_available_gpus()))


resource.get_notebook_gpus = _available_gpus
_add_task = resource.Scheduler.add


def _on_all_cores(target):
    """Run target with MXNet's threads on every core, unless set otherwise."""
    def run(*args):
        os.environ.setdefault('OMP_NUM_THREADS', str(os.cpu_count()))
        return target(*args)
    return run


def _add_heavy_alone(self, num_cpus, num_gpus, target, args, description=''):
    """Give the two training notebooks every CPU slot; add others as they are."""
    if any(name in description for name in ('bert-pretraining', 'bert-snli')):
        num_cpus, target = self._num_cpus, _on_all_cores(target)
    _add_task(self, num_cpus, num_gpus, target, args, description)


resource.Scheduler.add = _add_heavy_alone
sphinx_template.google_tracker = ''

_COPY_LINK = re.compile(r'<a class="copybtn.*?</a>', re.DOTALL)
_COPY_BUTTON = (
    '<button type="button" class="copybtn o-tooltip--left" '
    'data-tooltip="${messages[locale][\'copy\']}" data-clipboard-target="#${id}" '
    'aria-label="${messages[locale][\'copy_to_clipboard\']}">'
    '<i class="fas fa-copy" aria-hidden="true"></i></button>')
assert len(_COPY_LINK.findall(sphinx_template.copybutton_js)) == 1, \
    'd2lbook changed its copy button: update tools/d2lbook_run.py'
sphinx_template.copybutton_js = _COPY_LINK.sub(
    lambda _: _COPY_BUTTON, sphinx_template.copybutton_js).replace(
        "insertAdjacentHTML('afterend'", "insertAdjacentHTML('beforebegin'")

_prepare_env = sphinx.SphinxEnv.prepare_env


def _prepare_env_for_the_book(env):
    """Write d2lbook's conf.py, then append this book's settings to it."""
    _prepare_env(env)
    settings = {
        'book_root': os.path.abspath(env.config.src_dir),
        'book_notebooks': os.path.abspath(env.config.ipynb_dir),
        'html_title': env.config.project['title'],
        'html_use_index': False,
        'html_math_renderer': 'katex',
        'highlight_language': 'none',
        'pygments_style': 'book_sphinx.BookStyle',
    }
    lines = [f'sys.path.insert(0, {str(SCRIPTS)!r})',
             "extensions.append('book_sphinx')"]
    lines += [f'{name} = {value!r}' for name, value in settings.items()]
    with open(os.path.join(env.config.rst_dir, 'conf.py'), 'a') as conf:
        conf.write('\n# Added by tools/d2lbook_run.py\n' + '\n'.join(lines) + '\n')


sphinx.SphinxEnv.prepare_env = _prepare_env_for_the_book

if __name__ == '__main__':
    main.main()
