"""The rendered HTML book, opened in a real headless Chromium.

scripts/test.sh builds the book offline and points BOOK_HTML_DIR at it; by
default the tests read _build/html, which scripts/build.sh makes.
"""

import html.parser
import os
import pathlib
import shutil
import urllib.parse

import pytest
from playwright.sync_api import sync_playwright

from offline_hub import serve

ROOT = pathlib.Path(__file__).resolve().parent.parent
HTML = pathlib.Path(os.environ.get('BOOK_HTML_DIR', ROOT / '_build' / 'html')).resolve()
SECTIONS = sorted(p.stem for p in (ROOT / 'chapter_bert').glob('*.md')
                  if p.stem != 'index')
# Sections whose notebooks draw figures (an Animator plot each).
WITH_FIGURES = {'tools', 'bert-pretraining'}
CHROMIUM_ARGS = ['--no-sandbox', '--disable-gpu', '--disable-quic',
                 '--no-first-run', '--disable-background-networking',
                 '--disable-component-update', '--disable-sync']


class _Links(html.parser.HTMLParser):
    """Collect the ids a page defines and the URLs it refers to."""
    def __init__(self):
        super().__init__()
        self.ids, self.urls = set(), []

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        if 'id' in attrs:
            self.ids.add(attrs['id'])
        for name in ('href', 'src'):
            if attrs.get(name):
                self.urls.append(attrs[name].strip())


def _parse(path):
    parser = _Links()
    parser.feed(path.read_text(encoding='utf-8'))
    return parser


@pytest.fixture(scope='module')
def book():
    """Serve the built book on loopback and open it in headless Chromium."""
    assert (HTML / 'index.html').exists(), (
        f'no HTML book in {HTML}: run scripts/build.sh (or scripts/test.sh)')
    chromium = shutil.which('chromium')
    assert chromium, 'the browser test needs chromium on PATH'
    with serve(HTML) as base_url, sync_playwright() as p:
        browser = p.chromium.launch(executable_path=chromium, args=CHROMIUM_ARGS)
        yield base_url, browser
        browser.close()


def test_every_section_is_in_the_book():
    for name in ['index'] + SECTIONS:
        assert (HTML / 'chapter_bert' / f'{name}.html').exists(), name


@pytest.mark.parametrize('section', SECTIONS)
def test_section_renders_code_outputs_and_figures(book, section):
    base_url, browser = book
    page = browser.new_page()
    errors = []
    page.on('pageerror', lambda e: errors.append(str(e)))
    # Offline, MathJax cannot load from its CDN, and the browser asks for a
    # /favicon.ico that the book does not have; every other error counts.
    def ours(url):
        return url.startswith(base_url) and not url.endswith('/favicon.ico')
    page.on('console', lambda m: errors.append(m.text) if m.type == 'error'
            and ours(m.location.get('url', base_url)) else None)
    page.on('requestfailed', lambda r: errors.append(f'{r.url}: {r.failure}')
            if ours(r.url) else None)
    response = page.goto(f'{base_url}chapter_bert/{section}.html', wait_until='load')
    assert response.ok
    assert page.locator('div.highlight-python').count() > 0, 'no code shown'
    outputs = page.locator('div.output')
    assert outputs.count() > 0, 'no executed outputs shown'
    assert 'Traceback (most recent call last)' not in '\n'.join(outputs.all_inner_texts())
    figures = page.locator('img').evaluate_all(
        'imgs => imgs.filter(i => i.src.includes("_images/")).map('
        'i => [i.src, i.complete && i.naturalWidth > 0])')
    assert all(ok for _, ok in figures), f'figures that failed to load: {figures}'
    if section in WITH_FIGURES:
        assert figures, 'the figure of this section is missing'
    assert errors == []
    page.close()


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
            elif parts.fragment and target.suffix == '.html':
                if parts.fragment not in pages[target].ids:
                    broken.append(f'{path.relative_to(HTML)}: {url} (no such anchor)')
    assert broken == []
