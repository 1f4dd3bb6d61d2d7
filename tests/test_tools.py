"""Timing, plotting and vocabularies from the tools section (devices: test_devices.py)."""

import time

import pytest

from d2l import mxnet as d2l


def test_timer_records_every_lap():
    timer = d2l.Timer()
    for _ in range(3):
        timer.start()
        time.sleep(0.01)
        assert timer.stop() == timer.laps[-1]
    assert len(timer.laps) == 3
    assert all(0.01 <= lap < 1 for lap in timer.laps)


def test_animator_keeps_every_point_without_ipython():
    animator = d2l.Animator(xlabel='step', legend=['a', 'b'])
    for step in range(5):
        animator.add(step, (step, None if step % 2 else -step))
    assert animator.curves[0] == ([0, 1, 2, 3, 4], [0.0, 1.0, 2.0, 3.0, 4.0])
    assert animator.curves[1] == ([0, 2, 4], [0.0, -2.0, -4.0])
    assert animator.display is None  # nothing to display outside Jupyter
    animator.draw()
    lines = animator.axes.get_lines()
    assert [list(line.get_xdata()) for line in lines] == [[0, 1, 2, 3, 4], [0, 2, 4]]
    assert animator._repr_svg_().lstrip().startswith('<?xml')


def test_animator_redraws_at_most_once_a_second():
    animator = d2l.Animator()
    animator.add(0, 1.0)  # the first point is drawn at once
    for step in range(1, 5):  # these come within a second of it
        animator.add(step, float(step))
    assert [list(line.get_xdata()) for line in animator.axes.get_lines()] == [[0]]
    animator.drawn_at -= 1  # as if the drawing were a second old
    animator.add(5, 5.0)
    assert list(animator.axes.get_lines()[0].get_xdata()) == [0, 1, 2, 3, 4, 5]


def test_tokenize_words_and_chars():
    assert d2l.tokenize(['a  b c', '']) == [['a', 'b', 'c'], []]
    assert d2l.tokenize(['ab'], token='char') == [['a', 'b']]
    with pytest.raises(ValueError, match="'bytes'"):
        d2l.tokenize(['ab'], token='bytes')


def test_vocab_orders_filters_and_maps_back():
    tokens = d2l.tokenize(['b a b c', 'a b d d'])
    vocab = d2l.Vocab(tokens, min_freq=2, reserved_tokens=['<pad>', '<cls>'])
    # <unk>, reserved in order, then by decreasing count (b:3, a:2, d:2 seen after a)
    assert vocab.idx_to_token == ['<unk>', '<pad>', '<cls>', 'b', 'a', 'd']
    assert vocab['c'] == vocab.unk == 0
    assert vocab[['a', 'zzz']] == [4, 0]
    assert vocab.to_tokens([3, 5]) == ['b', 'd'] and vocab.to_tokens(1) == '<pad>'
    assert len(vocab) == 6
    assert vocab.token_freqs[0] == ('b', 3)


def test_vocab_does_not_duplicate_unk_or_reserved_tokens():
    vocab = d2l.Vocab(['<unk>', '<pad>', 'x', '<unk>'], reserved_tokens=['<pad>'])
    assert vocab.idx_to_token == ['<unk>', '<pad>', 'x']
