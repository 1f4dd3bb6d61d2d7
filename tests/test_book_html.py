"""The rendered HTML book, opened in a real headless Chromium with no network.

tools/test.sh builds the book offline and points BOOK_HTML_DIR at it; by
default the tests read _build/html, which tools/build.sh makes. Every request
that leaves the book's own loopback server is aborted, and every page is
checked at a desktop and a phone width, with axe-core for accessibility.
"""

import html.parser
import io
import os
import pathlib
import re
import shutil
import sys
import urllib.parse
import urllib.request
import zipfile

import nbformat
import pytest
from offline_hub import serve
from playwright.sync_api import sync_playwright

ROOT = pathlib.Path(__file__).resolve().parent.parent
HTML = pathlib.Path(os.environ.get('BOOK_HTML_DIR', ROOT / '_build' / 'html')).resolve()
SECTIONS = sorted(p.stem for p in (ROOT / 'chapter_bert').glob('*.md')
                  if p.stem != 'index')
PAGES = (['index.html', 'chapter_bert/index.html']
         + [f'chapter_bert/{name}.html' for name in SECTIONS]
         + ['api.html', 'references.html'])
# Sections whose notebooks draw plots (an Animator plot each). Figures written
# in the markdown as ![caption](path) are checked in every section.
WITH_PLOTS = {'tools', 'bert-pretraining'}
WIDTHS = {'desktop': 1280, 'phone': 390}
# tools/npm_assets.sh installs the pinned axe-core beside KaTeX.
AXE = pathlib.Path(sys.prefix) / 'npm' / 'node_modules' / 'axe-core' / 'axe.min.js'
MARKDOWN_IMAGE = re.compile(r'!\[([^\]]+)\]\(([^)\s]+)\)')
CHROMIUM_ARGS = ['--no-sandbox', '--disable-gpu', '--disable-quic',
                 '--no-first-run', '--disable-background-networking',
                 '--disable-component-update', '--disable-sync']
SETTLED = ('document.fonts.ready.then(() => new Promise('
           'r => requestAnimationFrame(() => requestAnimationFrame(r))))')


class _Links(html.parser.HTMLParser):
    """Collect the ids a page defines, the URLs it refers to and its <div> balance."""
    def __init__(self):
        super().__init__()
        self.ids, self.urls, self.open_divs, self.closed_divs = set(), [], 0, 0

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        self.open_divs += tag == 'div'
        if 'id' in attrs:
            self.ids.add(attrs['id'])
        for name in ('href', 'src'):
            if attrs.get(name):
                self.urls.append(attrs[name].strip())

    def handle_endtag(self, tag):
        self.closed_divs += tag == 'div'


def _parse(path):
    parser = _Links()
    parser.feed(path.read_text(encoding='utf-8'))
    return parser


def _plain(text):
    """Return caption text as readers see it: no markdown, straight quotes, single spaces."""
    text = text.translate({0x2018: "'", 0x2019: "'", 0x201c: '"', 0x201d: '"'})
    return ' '.join(re.sub(r'[*`\\]', '', text).split())


def _fetch(url):
    with urllib.request.urlopen(url, timeout=30) as response:
        return response.read()


@pytest.fixture(scope='module')
def book():
    """Serve the built book on loopback and start headless Chromium."""
    assert (HTML / 'index.html').exists(), (
        f'no HTML book in {HTML}: run tools/build.sh (or tools/test.sh)')
    chromium = shutil.which('chromium')
    assert chromium, 'the browser test needs chromium on PATH'
    assert AXE.exists(), f'no axe-core at {AXE}: run bash tools/npm_assets.sh'
    with serve(HTML) as base_url, sync_playwright() as p:
        # Playwright hides scrollbars by default; the tests look at them.
        browser = p.chromium.launch(executable_path=chromium, args=CHROMIUM_ARGS,
                                    ignore_default_args=['--hide-scrollbars'])
        yield base_url, browser
        browser.close()


class Visit:
    """One page opened offline at one width, with everything that went wrong."""
    def __init__(self, book, path, width):
        base_url, browser = book
        self.base_url = base_url
        self.context = browser.new_context(viewport={'width': width, 'height': 900})
        self.errors, self.left_the_book = [], []
        self.context.route('**/*', self._only_the_book)
        self.page = self.context.new_page()
        self.page.on('pageerror', lambda e: self.errors.append(str(e)))
        self.page.on('console', lambda m: self.errors.append(m.text)
                     if m.type == 'error' else None)
        self.page.on('response', lambda r: self.errors.append(f'{r.url}: HTTP {r.status}')
                     if r.status >= 400 else None)
        self.page.on('requestfailed', lambda r: self.errors.append(f'{r.url}: {r.failure}')
                     if r.url.startswith(base_url) else None)
        self.response = self.page.goto(base_url + path, wait_until='load')
        self.page.evaluate(SETTLED)

    def _only_the_book(self, route):
        if route.request.url.startswith(self.base_url):
            route.continue_()
        else:
            self.left_the_book.append(route.request.url)
            route.abort()

    def close(self):
        self.context.close()


@pytest.fixture
def visit(book):
    opened = []

    def open_page(path, width=WIDTHS['desktop']):
        opened.append(Visit(book, path, width))
        return opened[-1]
    yield open_page
    for v in opened:
        v.close()


def test_every_section_is_in_the_book():
    for name in ['index'] + SECTIONS:
        assert (HTML / 'chapter_bert' / f'{name}.html').exists(), name


@pytest.mark.parametrize('width', WIDTHS)
@pytest.mark.parametrize('path', PAGES)
def test_page_offline_accessible_and_well_laid_out(visit, path, width):
    v = visit(path, WIDTHS[width])
    page = v.page
    assert v.response.ok
    # Math: every equation typeset by KaTeX, no LaTeX source left.
    text = page.locator('body').inner_text()
    for raw in ('\\(', '\\[', '$$'):
        assert raw not in text, f'raw math {raw!r} left in the page'
    untypeset = page.evaluate('[...document.querySelectorAll("span.math, div.math")]'
                              '.filter(e => !e.querySelector(".katex")).length')
    assert untypeset == 0
    # Equation labels became numbers: none is left as text inside math or as a
    # reference that did not resolve.
    for leftover in (':label:', ':eqlabel:', ':eqref:'):
        assert leftover not in text, f'{leftover!r} left in the page text'
    unresolved = re.findall(r'\beq_[a-z_]+', text)
    assert not unresolved, f'equation labels left as text: {unresolved}'
    # Accessibility: axe-core finds no violation of any rule.
    page.add_script_tag(path=str(AXE))
    violations = page.evaluate(
        'axe.run(document).then(r => r.violations.map(v => v.id + ": " + '
        'v.nodes.slice(0, 3).map(n => n.target.join(" ")).join(", ")))')
    assert violations == []
    # Landmarks, meta tags and titles.
    assert page.locator('main, [role=main]').count() == 1
    assert page.locator('meta[name=viewport]').count() == 1
    assert page.locator('[role=botton]').count() == 0
    assert not page.title().endswith('documentation'), page.title()
    assert page.locator('link[rel~=icon]').count() == 1
    # The page opens at its top, right under a header without empty rows.
    assert page.evaluate('document.querySelector("main").scrollTop + window.scrollY') == 0
    rows = page.locator('header.mdl-layout__header .mdl-layout__header-row')
    assert all(row.inner_text().strip() or row.locator('a').count()
               for row in rows.all()), 'an empty row in the header'
    gap = page.evaluate('document.querySelector(".page-content h1").getBoundingClientRect().top'
                        ' - document.querySelector("header.mdl-layout__header")'
                        '.getBoundingClientRect().bottom')
    assert gap < 48 if width == 'desktop' else gap < 120, f'{gap}px between header and title'
    # Copy buttons: real buttons, off the code text.
    copy_buttons = page.evaluate('''[...document.querySelectorAll(".copybtn")].map(b => {
        const box = b.getBoundingClientRect();
        const range = document.createRange();
        range.selectNodeContents(b.parentElement.querySelector("pre"));
        const covered = [...range.getClientRects()].filter(t => t.width > 0
            && t.left < box.right && t.right > box.left
            && t.top < box.bottom && t.bottom > box.top);
        return [b.tagName, b.tabIndex, covered.length];
    })''')
    assert all(tag == 'BUTTON' and tab >= 0 and covered == 0
               for tag, tab, covered in copy_buttons), copy_buttons
    # Nothing makes the page scroll sideways; wide code and math scroll on
    # their own, with a visible scrollbar, and take the keyboard focus.
    assert page.evaluate('document.documentElement.scrollWidth <= window.innerWidth')
    wide = page.evaluate('''[...document.querySelectorAll(
            ".page-content pre, div.math, div.math > .math-body")]
        .filter(e => e.scrollWidth > e.clientWidth).map(e => {
            const style = getComputedStyle(e);
            const bar = e.offsetHeight - e.clientHeight
                - parseFloat(style.borderTopWidth) - parseFloat(style.borderBottomWidth);
            return [e.className, style.overflowX, bar, e.tabIndex];
        })''')
    assert all(overflow in ('auto', 'scroll') and bar >= 6 and tab >= 0
               for _, overflow, bar, tab in wide), wide
    # The page's outline is reachable at both widths.
    sections = page.locator('.page-content section section > h2')
    if sections.count():
        outline = page.locator('.side-doc-outline .localtoc' if width == 'desktop'
                               else 'details.page-outline')
        if width == 'phone':
            outline.locator('summary').click()
        links = outline.locator('a[href^="#"]')
        assert links.count() >= sections.count()
        assert all(link.is_visible() for link in links.all()[1:])
    assert v.left_the_book == [] and v.errors == []


@pytest.mark.parametrize('section', SECTIONS)
def test_section_renders_code_outputs_and_figures(visit, section):
    page = visit(f'chapter_bert/{section}.html').page
    assert page.locator('div.highlight-python').count() > 0, 'no code shown'
    outputs = page.locator('div.output')
    assert outputs.count() > 0, 'no executed outputs shown'
    assert 'Traceback (most recent call last)' not in '\n'.join(outputs.all_inner_texts())
    assert page.locator('div.output pre span[class]').count() == 0, \
        'plain-text outputs are syntax-highlighted'
    images = page.locator('img').evaluate_all(
        'imgs => imgs.filter(i => i.src.includes("_images/")).map('
        'i => [i.getAttribute("src"), i.alt, i.complete && i.naturalWidth > 0])')
    assert all(ok for _, _, ok in images), f'figures that failed to load: {images}'
    for src, alt, _ in images:
        assert alt.strip() and '/' not in alt and not alt.endswith(('.svg', '.png')), \
            f'{src} has no meaningful alt text: {alt!r}'
    if section in WITH_PLOTS:
        assert any(alt.startswith('Plot') for _, alt, _ in images), 'the plot is missing'
    markdown = (ROOT / 'chapter_bert' / f'{section}.md').read_text(encoding='utf-8')
    alts = {_plain(alt) for _, alt, _ in images}
    for caption, target in MARKDOWN_IMAGE.findall(markdown):
        assert _plain(caption) in alts, (
            f'figure {target} is missing, or its alt text is not its whole caption '
            '(pandoc drops raw HTML such as <cls> from a caption: write \\<cls\\>)')


def test_each_section_links_its_notebook_and_the_zip_holds_them_all(visit):
    for section in SECTIONS:
        page = visit(f'chapter_bert/{section}.html').page
        link = page.locator('header a[href$=".ipynb"]')
        assert link.count() == 1, f'{section}: no link to its notebook'
        url = urllib.parse.urljoin(page.url, link.get_attribute('href'))
        assert url.endswith(f'chapter_bert/{section}.ipynb'), url
        notebook = nbformat.reads(_fetch(url).decode('utf-8'), as_version=4)
        nbformat.validate(notebook)
        assert any(cell.cell_type == 'code' for cell in notebook.cells), url
    page = visit('index.html').page
    link = page.locator('header a[href$=".zip"]')
    assert link.count() == 1, 'no link to the zip of all notebooks'
    archive = zipfile.ZipFile(io.BytesIO(_fetch(
        urllib.parse.urljoin(page.url, link.get_attribute('href')))))
    assert sorted(archive.namelist()) == [f'chapter_bert/{s}.ipynb' for s in SECTIONS]
    for name in archive.namelist():
        nbformat.validate(nbformat.reads(archive.read(name).decode('utf-8'), as_version=4))


def test_api_page_lists_the_library_with_links_to_its_sections(visit):
    source = (ROOT / 'd2l' / 'mxnet.py').read_text(encoding='utf-8')
    generated = source.split('#################   WARNING   ################', 1)[1]
    blocks = re.split(r'\n(?=(?:def|class) )', generated)
    names = {}
    for block in blocks:
        found = re.match(r'(?:def|class) ([A-Za-z]\w*)', block)
        if found:
            names[found.group(1)] = 'Defined in :numref:' in block
    assert names, 'no functions or classes found in d2l/mxnet.py'
    page = visit('index.html').page
    toc_links = page.locator('.page-content a[href="api.html"]')
    assert toc_links.count() >= 1, 'the API page is not in the toc'
    page = visit('api.html').page
    for name, has_section in names.items():
        entry = page.locator(f'dt[id="d2l.{name}"]')
        assert entry.count() == 1, f'd2l.{name} missing from the API page'
        assert f'd2l.{name}' in entry.inner_text().replace('\n', '')
        if has_section:
            links = entry.locator(
                'xpath=following-sibling::dd[1]/p//a[contains(@href, "chapter_bert/")]')
            assert links.count() >= 1, f'd2l.{name} does not link to its section'


def test_no_broken_link_inside_the_book():
    pages = {path.resolve(): _parse(path) for path in HTML.rglob('*.html')}
    broken = []
    for path, parsed in pages.items():
        for url in parsed.urls:
            parts = urllib.parse.urlsplit(url)
            if parts.scheme or parts.netloc or url.startswith(('mailto:', 'javascript:')):
                continue
            target = (path.parent / urllib.parse.unquote(parts.path)).resolve() \
                if parts.path else path
            if target.is_dir():
                target = target / 'index.html'
            if not target.exists():
                broken.append(f'{path.relative_to(HTML)}: {url}')
            elif (parts.fragment and target.suffix == '.html'
                  and parts.fragment not in pages[target].ids):
                broken.append(f'{path.relative_to(HTML)}: {url} (no such anchor)')
    assert broken == []


def test_every_page_closes_the_divs_it_opens():
    unbalanced = [f'{path.relative_to(HTML)}: {p.open_divs} <div>, {p.closed_divs} </div>'
                  for path in sorted(HTML.rglob('*.html'))
                  for p in [_parse(path)] if p.open_divs != p.closed_divs]
    assert unbalanced == []
    assert not (HTML / 'genindex.html').exists(), 'an empty general index'
