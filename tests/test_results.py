"""The tables the book types are the committed outputs of its experiment scripts."""

import json
import math
import pathlib
import re
import statistics

ROOT = pathlib.Path(__file__).resolve().parent.parent
RESULTS = ROOT / 'results'


def table_rows(text):
    """The body rows of the markdown tables in text, as lists of cells."""
    rows = []
    for line in text.splitlines():
        cells = [c.strip() for c in line.strip().strip('|').split('|')]
        if line.startswith('|') and not set(''.join(cells)) <= set('-:'):
            rows.append(cells)
    return rows


def test_the_ablation_table_is_the_scripts_output():
    measured = table_rows((RESULTS / 'pretraining_ablations.md').read_text())
    page = table_rows((ROOT / 'chapter_bert' / 'bert-pretraining.md').read_text())
    runs = [row[:-1] for row in measured[1:]]  # without the minutes
    assert len(runs) >= 9
    for run in runs:
        assert run in page, run


def test_the_snli_table_is_the_scripts_output():
    saved = json.loads((RESULTS / 'finetune_snli.json').read_text())
    page = table_rows((ROOT / 'chapter_bert' / 'bert-snli.md').read_text())
    assert len(saved['seeds']) >= 3
    for name, runs in saved['runs'].items():
        accuracies = [a for a, _ in runs]
        assert len(accuracies) == len(saved['seeds'])
        cell = (f'{statistics.mean(accuracies):.3f} ± '
                f'{statistics.stdev(accuracies):.3f}')
        losses = [loss for _, loss in runs]
        loss = '—' if losses[0] is None else f'{statistics.mean(losses):.3f}'
        assert [name, cell, loss] in page, name
    assert f'{saved["unk_share"]:.1%}' in (ROOT / 'chapter_bert' / 'bert-snli.md').read_text()
    assert all(math.isfinite(a) for runs in saved['runs'].values() for a, _ in runs)


def test_the_snli_pages_pretrained_model_is_the_one_measured():
    # results/pretrain.txt: what scripts/pretrain.py --save printed for the
    # model that experiments/finetune_snli.py fine-tuned
    printed = (RESULTS / 'pretrain.txt').read_text()
    below = re.search(r'\((\d+\.\d+) below the unigram floor', printed).group(1)
    page = ' '.join((ROOT / 'chapter_bert' / 'bert-snli.md').read_text().split())
    assert f'reached {below} nats below the unigram floor' in page
    assert float(below) >= 1.3
