"""The prose word count of tools/word_count.py."""

import pathlib
import sys

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parent.parent / 'tools'))
import word_count  # noqa: E402


def test_prose_leaves_out_code_equations_and_labels():
    markdown = ('# A title\n:label:`sec_a`\n\nTwo words, $x$ inline.\n\n'
                '```{.python .input}\nprint("not prose")\n```\n\n'
                '$$y = f(x)$$\n:eqlabel:`eq_y`\n\n* a - list | item\n')
    # A, title; Two, words, $x$, inline.; a, list, item
    assert word_count.count_words(word_count.prose(markdown)) == 9


def test_sections_follow_the_chapters_toc():
    names = word_count.sections()
    assert names[0] == 'index' and 'bert-pretraining' in names
    assert word_count.OPTIONAL <= set(names)


def test_the_main_path_keeps_to_its_budget():
    # the chapter's main path (every section but the optional one) is at most
    # 11,000 words of prose; see tools/word_count.py
    counts = word_count.section_counts()
    main_path = sum(w for name, w in counts.items()
                    if name not in word_count.OPTIONAL)
    assert 1000 < main_path <= 11_000, main_path
