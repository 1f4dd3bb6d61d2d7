"""Count the chapter's words of prose, section by section.

Prose is what a reader reads as text: fenced code cells, display equations
($$ ... $$), labels and the table of contents are left out. The main path is
the chapter's index and every section but the optional one.

Usage: python tools/word_count.py
"""

import pathlib
import re

ROOT = pathlib.Path(__file__).resolve().parent.parent
CHAPTER = ROOT / 'chapter_bert'
OPTIONAL = {'bert-distributed'}  # "Pretraining beyond one machine"


def sections():
    """The chapter's files in reading order: its index, then its toc."""
    index = (CHAPTER / 'index.md').read_text(encoding='utf-8')
    toc = re.search(r'```toc\n(.*?)```', index, re.S).group(1)
    names = [line.strip() for line in toc.splitlines()
             if line.strip() and not line.startswith(':')]
    return ['index'] + names


def prose(markdown):
    """The markdown without code cells, display equations and labels."""
    text = re.sub(r'^```.*?^```', ' ', markdown, flags=re.S | re.M)
    text = re.sub(r'\$\$.*?\$\$', ' ', text, flags=re.S)
    return re.sub(r'^:(label|eqlabel):`[^`]*`', ' ', text, flags=re.M)


def count_words(text):
    """Words: runs between spaces that hold a letter or a digit."""
    return sum(1 for token in text.split() if re.search(r'\w', token))


def section_counts():
    """The words of prose of each section, in reading order."""
    return {name: count_words(prose((CHAPTER / f'{name}.md').read_text(
        encoding='utf-8'))) for name in sections()}


def main():
    counts = section_counts()
    for name, words in counts.items():
        print(f'{name:24} {words:6,}' + ('  (optional)' if name in OPTIONAL
                                         else ''))
    main_path = sum(w for name, w in counts.items() if name not in OPTIONAL)
    print(f'{"main path":24} {main_path:6,}')
    print(f'{"whole chapter":24} {sum(counts.values()):6,}')


if __name__ == '__main__':
    main()
