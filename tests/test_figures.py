"""The diagrams in img/ are what tools/draw_figures.py draws from the sources."""

import pathlib
import sys

import pytest

ROOT = pathlib.Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / 'tools'))
import draw_figures  # noqa: E402


@pytest.mark.parametrize('draw', draw_figures.FIGURES, ids=lambda f: f.__name__)
def test_each_figure_is_redrawn_byte_for_byte(draw, tmp_path, monkeypatch):
    monkeypatch.setattr(draw_figures, 'IMG_DIR', tmp_path)
    draw()
    (drawn,) = tmp_path.iterdir()
    assert drawn.read_bytes() == (ROOT / 'img' / drawn.name).read_bytes(), (
        f'img/{drawn.name} is stale: run python tools/draw_figures.py')


def test_the_chapter_maps_arrows_come_from_the_sections_code():
    order, uses = draw_figures.chapter_uses()
    assert order[-1] == 'bert-distributed'  # the optional section comes last
    edges = {(order[i], order[j]) for i, j in uses}
    # e.g. fine-tuning pads its pairs with the dataset section's pad_pairs
    assert ('bert-dataset', 'bert-snli') in edges
    assert ('bert-pretraining', 'bert-distributed') in edges
    # and nothing on the main path uses the optional section
    assert not any(a == 'bert-distributed' for a, _ in edges)
