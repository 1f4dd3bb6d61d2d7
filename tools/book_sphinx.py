"""Sphinx extension for the HTML book; tools/d2lbook_run.py adds it to conf.py.

It renders math with the KaTeX shipped in .venv/npm (see tools/npm_assets.sh),
gives every image an alt text, writes the API page, serves each section's
notebook beside its page plus a zip of all of them, and adds the book's own
templates, stylesheet, script and syntax colours.
"""

import pathlib
import re
import shutil
import sys
import zipfile
from typing import ClassVar

import api_page
import nbformat
from docutils import nodes
from pygments.styles.friendly import FriendlyStyle
from pygments.token import Comment, Generic, Keyword, Name, Number, Operator, String
from sphinx.ext.mathjax import html_visit_displaymath, html_visit_math
from sphinx.writers.html5 import HTML5Translator

STATIC = pathlib.Path(__file__).resolve().parent.parent / 'static'
KATEX = pathlib.Path(sys.prefix) / 'npm' / 'node_modules' / 'katex' / 'dist'
NOTEBOOKS_ZIP = 'notebooks.zip'
NUMBER = re.compile(r'[-\u2212+]?[0-9.,]+(e[-+]?[0-9]+)?|\$.*\$')


class BookStyle(FriendlyStyle):
    """Pygments' friendly colours, darkened to at least 4.5:1 on the code background."""
    background_color = '#f5f5f5'
    styles: ClassVar[dict] = {
        **FriendlyStyle.styles,
        Comment: 'italic #3d6b75',
        Comment.Preproc: 'noitalic #00701f',
        Comment.Special: 'noitalic bg:#fff0f0',
        Keyword: 'bold #00701f',
        Keyword.Type: 'nobold #8a2a00',
        Operator: '#595959',
        Operator.Word: 'bold #00701f',
        Name.Builtin: '#00701f',
        Name.Function: '#06287e',
        Name.Class: 'bold #0b5f86',
        Name.Namespace: 'bold #0b5f86',
        Name.Exception: '#00701f',
        Name.Variable: '#8a3aa0',
        Name.Constant: '#1f5f85',
        Name.Entity: 'bold #a63d20',
        Name.Attribute: '#335a85',
        Name.Decorator: 'bold #555555',
        String: '#335a85',
        String.Interpol: 'italic #335a85',
        String.Symbol: '#41610f',
        String.Other: '#9a4607',
        Number: '#1b6b45',
        Generic.Output: '#4d4d4d',
        Generic.Prompt: 'bold #a63d20',
        Generic.Traceback: '#0044dd',
    }


def check_katex(app):
    """Fail early, and say how to fix it, when the KaTeX assets are missing."""
    if not (KATEX / 'katex.min.js').exists():
        raise FileNotFoundError(f'no KaTeX in {KATEX}: run bash tools/npm_assets.sh')


def add_static_files(app, config):
    """Put the book's templates first and add its stylesheet and script."""
    config.templates_path.insert(0, str(STATIC / 'templates'))
    config.html_static_path.append(str(STATIC / 'html'))
    app.add_css_file('book.css')
    app.add_js_file('book.js')


def write_api_page(app):
    """Write api.rst into the Sphinx source directory from the library."""
    library = pathlib.Path(app.config.book_root) / 'd2l' / 'mxnet.py'
    text = api_page.render(library)
    target = pathlib.Path(app.srcdir) / 'api.rst'
    if not target.exists() or target.read_text(encoding='utf-8') != text:
        target.write_text(text, encoding='utf-8')


def plot_labels(svg_text):
    """Return the x label, y label and legend entries that matplotlib wrote into an SVG."""
    def words(part):
        texts = re.findall(r'<!-- (.*?) -->', part)
        return [t for t in texts if not NUMBER.fullmatch(t)]
    x_part, _, rest = svg_text.partition('<g id="matplotlib.axis_2">')
    x_part = x_part.partition('<g id="matplotlib.axis_1">')[2]
    y_part, _, legend_part = rest.partition('<g id="legend_1">')
    return words(x_part), words(y_part.split('<g id="line2d_')[0]), words(legend_part)


def plot_alt(path):
    """Describe a matplotlib plot by its labels, e.g. 'Plot of loss (mlm, nsp) against epoch'."""
    if path.suffix != '.svg' or not path.exists():
        return 'Plot drawn by the code above'
    xlabel, ylabel, legend = plot_labels(path.read_text(encoding='utf-8'))
    what = ' '.join(ylabel)
    if legend:
        what = f'{what} ({", ".join(legend)})' if what else ', '.join(legend)
    alt = f'Plot of {what or "values"}'
    return alt + (f' against {" ".join(xlabel)}' if xlabel else '')


def set_alt_texts(app, doctree):
    """Give every image without alt text its figure's caption or its plot's labels."""
    for image in doctree.traverse(nodes.image):
        if image.get('alt'):
            continue
        figure = image.parent
        captions = [c for c in figure.children if isinstance(c, nodes.caption)] \
            if isinstance(figure, nodes.figure) else []
        if captions and captions[0].astext().strip():
            image['alt'] = ' '.join(captions[0].astext().split())
        else:
            # Sphinx's image collector may already have made the URI relative to srcdir.
            _, path = app.env.relfn2path(image['uri'], app.env.docname)
            if not pathlib.Path(path).exists():
                path = pathlib.Path(app.srcdir) / image['uri']
            image['alt'] = plot_alt(pathlib.Path(path))


class BookTranslator(HTML5Translator):
    """Sphinx's HTML writer with a well-formed list of citations.

    docutils 0.19 takes the last citation for the first one's previous sibling,
    so it never opens the <div> that it closes after the last citation, and it
    gives citations the deprecated role doc-biblioentry; we write plain <div>s.
    """
    def visit_citation(self, node):
        index = node.parent.index(node)
        if index == 0 or not isinstance(node.parent[index - 1], nodes.citation):
            self.body.append('<div class="citation-list">\n')
        self.body.append(self.starttag(node, 'div', classes=[node.tagname]))


def section_notebooks(app):
    """Map each page whose notebook has code to that notebook's path."""
    root = pathlib.Path(app.config.book_notebooks)
    found = {}
    for path in sorted(root.rglob('*.ipynb')):
        notebook = nbformat.read(str(path), as_version=4)
        if any(cell.cell_type == 'code' for cell in notebook.cells):
            found[path.relative_to(root).with_suffix('').as_posix()] = path
    return found


def page_context(app, pagename, templatename, context, doctree):
    """Link the page's notebook and load KaTeX where the page has math."""
    if pagename in app.builder.book_notebooks:
        context['book_notebook'] = pagename.rsplit('/', 1)[-1] + '.ipynb'
    context['book_notebooks_zip'] = NOTEBOOKS_ZIP
    if app.env.get_domain('math').has_equations(pagename):
        app.add_css_file('katex/katex.min.css')
        app.add_js_file('katex/katex.min.js', defer='defer')


def find_notebooks(app):
    """Remember the section notebooks once, before any page is written."""
    app.builder.book_notebooks = section_notebooks(app)


def write_assets(app, exception):
    """Copy KaTeX and the notebooks into the HTML output and zip the notebooks."""
    if exception or app.builder.format != 'html':
        return
    out = pathlib.Path(app.outdir)
    katex = out / '_static' / 'katex'
    shutil.rmtree(katex, ignore_errors=True)
    shutil.copytree(KATEX / 'fonts', katex / 'fonts')
    for name in ('katex.min.css', 'katex.min.js'):
        shutil.copyfile(KATEX / name, katex / name)
    partial = out / (NOTEBOOKS_ZIP + '.part')
    with zipfile.ZipFile(partial, 'w', zipfile.ZIP_DEFLATED) as archive:
        for pagename, path in app.builder.book_notebooks.items():
            shutil.copyfile(path, out / (pagename + '.ipynb'))
            info = zipfile.ZipInfo(pagename + '.ipynb', date_time=(1980, 1, 1, 0, 0, 0))
            info.compress_type = zipfile.ZIP_DEFLATED
            archive.writestr(info, path.read_bytes())
    partial.replace(out / NOTEBOOKS_ZIP)


def setup(app):
    app.add_config_value('book_root', '', 'html')
    app.add_config_value('book_notebooks', '', 'html')
    app.add_html_math_renderer('katex', (html_visit_math, None),
                               (html_visit_displaymath, None))
    app.set_translator('html', BookTranslator, override=True)
    app.connect('config-inited', add_static_files)
    app.connect('builder-inited', check_katex)
    app.connect('builder-inited', write_api_page)
    app.connect('builder-inited', find_notebooks)
    app.connect('doctree-read', set_alt_texts)
    app.connect('html-page-context', page_context)
    app.connect('build-finished', write_assets)
    return {'parallel_read_safe': True, 'parallel_write_safe': True}
