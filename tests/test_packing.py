"""Packing several sentence pairs into one row: layout, model, loss, loader."""

import mxnet as mx
import numpy as onp
import pytest
from mxnet import autograd, init, np, npx

from conftest import seed_all
from d2l import mxnet as d2l

MAX_LEN, ROW_LEN = 16, 24


def synthetic_examples(sizes_a, sizes_b, seed=0):
    """Padded, masked examples of pairs of sentences with the given sizes."""
    seed_all(seed)
    vocab = d2l.Vocab([[f'w{i}' for i in range(30)]],
                      reserved_tokens=d2l.BERT_RESERVED_TOKENS)
    sentences = [[f'w{i}' for i in onp.random.randint(30, size=n - 1)]
                 for n in [*sizes_a, *sizes_b]]  # each size counts its <sep>
    ids, starts = d2l.index_sentences(sentences, vocab)
    first = onp.arange(len(sizes_a))
    second = first + len(sizes_a)
    tokens, segments, valid_lens = d2l.pad_pairs(ids, starts, first, second,
                                                 MAX_LEN, vocab)
    masked, pred_positions, mlm_weights, mlm_labels = d2l.mask_tokens(
        tokens, valid_lens, vocab)
    is_next = onp.random.randint(2, size=len(first)).astype(onp.int32)
    return (masked, segments, valid_lens.astype(onp.float32), pred_positions,
            mlm_weights, mlm_labels, is_next), vocab


# valid lengths 1 + a + b: 16, 16, 12, 9, 6, 15; best fit into rows of 24
# gives [16, 6], [16], [15, 9] (a full row) and [12]
SIZES_A, SIZES_B = [8, 7, 6, 4, 3, 7], [7, 8, 5, 4, 2, 7]


def pair_spans(packed, r):
    """(column of <cls>, number of tokens) of each pair of packed row r."""
    starts = sorted(packed[8][r][packed[9][r] == 1].tolist())
    ends = starts[1:] + [int(packed[2][r])]
    return [(s, e - s) for s, e in zip(starts, ends)]


@pytest.fixture
def examples():
    return synthetic_examples(SIZES_A, SIZES_B)


def test_assign_rows_respects_both_budgets_and_places_every_pair():
    seed_all(3)
    lengths = onp.random.randint(5, 65, size=500)
    num_preds = onp.round(0.15 * lengths).astype(int)
    rows, num_rows = d2l.assign_rows(lengths, num_preds, 128, 19)
    assert rows.min() == 0 and rows.max() == num_rows - 1
    used = onp.bincount(rows, weights=lengths, minlength=num_rows)
    slots = onp.bincount(rows, weights=onp.maximum(1, num_preds))
    assert used.max() <= 128 and slots.max() <= 19
    assert num_rows >= -(-lengths.sum() // 128)  # no better than a perfect fill
    assert used.sum() / (num_rows * 128) > 0.9   # best fit packs tightly


def test_assign_rows_fills_the_fullest_row_that_fits():
    # longest first: 20 opens row 0, 16 opens row 1 (12 left in row 0), 12
    # fits both and goes to the fuller row 0, filling it; 8 goes to row 1
    rows, num_rows = d2l.assign_rows(onp.array([12, 20, 8, 16]),
                                     onp.array([1, 1, 1, 1]), 32, 5)
    assert num_rows == 2 and rows.tolist() == [0, 0, 1, 1]
    # with 2 slots a row, the slots bind before the positions do
    rows, num_rows = d2l.assign_rows(onp.array([4, 4, 4]),
                                     onp.array([1, 0, 2]), 32, 2)
    assert num_rows == 2 and rows.tolist() == [0, 0, 1]


def test_packed_rows_hold_each_pair_as_it_was(examples):
    arrays, vocab = examples
    packed = d2l.pack_examples(arrays, vocab, ROW_LEN)
    (tokens, segments, valid_lens, pred_positions, mlm_weights, mlm_labels,
     nsp_labels, positions, cls_positions, nsp_weights) = packed
    assert tokens.shape[1] == positions.shape[1] == ROW_LEN
    assert pred_positions.shape[1] == round(0.15 * ROW_LEN)
    assert d2l.count_pairs(packed) == len(arrays[0])
    assert valid_lens.sum() == arrays[2].sum()
    assert (valid_lens == ROW_LEN).any()             # a full row
    assert (nsp_weights.sum(axis=1) == 1).any()      # a row of one pair
    found = []
    for r in range(len(tokens)):
        for c, (start, n) in enumerate(pair_spans(packed, r)):
            pair = tokens[r, start:start + n]
            assert pair[0] == vocab['<cls>'] and cls_positions[r, c] == start
            assert (positions[r, start:start + n] == onp.arange(n)).all()
            matches = [i for i in range(len(arrays[0]))
                       if arrays[2][i] == n
                       and (arrays[0][i, :n] == pair).all()
                       and (arrays[1][i, :n] == segments[r, start:start + n]).all()
                       and arrays[6][i] == nsp_labels[r, c]]
            assert matches, f'row {r} pair {c} is no input pair'
            found.append(matches[0])
        pad = tokens[r, int(valid_lens[r]):]
        assert (pad == vocab['<pad>']).all()
    assert sorted(found) == list(range(len(arrays[0])))
    slots = mlm_weights == 1
    assert sorted(mlm_labels[slots].tolist()) == sorted(
        arrays[5][arrays[4] == 1].tolist())
    rows = onp.nonzero(slots)[0]
    assert (tokens[rows, pred_positions[slots]] != vocab['<pad>']).all()


def bert(vocab_size, max_len=MAX_LEN):
    seed_all(0)
    net = d2l.BERTModel(vocab_size, 16, 32, 2, 2, 0.0, max_len=max_len)
    net.initialize(init.Xavier())
    x = np.zeros((1, 4), dtype='int32')
    net(x, x, np.array([4.0]), x[:, :1])
    return net


def mean_losses_and_grads(net, batch, vocab_size):
    """The batch's MLM and NSP means and every parameter's gradient."""
    step_loss = d2l.PretrainingLoss(net, d2l.CrossEntropyLoss(), vocab_size)
    batch = [np.array(a) for a in batch]
    with autograd.record():
        mlm_sum, nsp_sum = step_loss(*batch)
        mlm = mlm_sum / batch[4].sum()
        nsp = nsp_sum / d2l.count_pairs(batch)
        (mlm + nsp).backward()
    grads = [(name, p.grad().asnumpy().copy())
             for name, p in net.collect_params().items()]
    return float(mlm), float(nsp), grads


@pytest.mark.parametrize('hybridize', [False, True])
def test_packed_and_padded_give_the_same_losses_and_gradients(examples,
                                                              hybridize):
    arrays, vocab = examples
    packed = d2l.pack_examples(arrays, vocab, ROW_LEN)
    assert len(packed[0]) < len(arrays[0])
    results = []
    for batch in (arrays, packed):
        net = bert(len(vocab))
        if hybridize:
            net.hybridize()
        results.append(mean_losses_and_grads(net, batch, len(vocab)))
    (mlm_a, nsp_a, grads_a), (mlm_b, nsp_b, grads_b) = results
    assert mlm_a == pytest.approx(mlm_b, rel=1e-5)
    assert nsp_a == pytest.approx(nsp_b, rel=1e-5)
    for (name, grad_a), (_, grad_b) in zip(grads_a, grads_b):
        onp.testing.assert_allclose(grad_b, grad_a, rtol=1e-3, atol=1e-6,
                                    err_msg=name)


def test_a_packed_pair_is_encoded_as_if_alone(examples):
    arrays, vocab = examples
    packed = d2l.pack_examples(arrays, vocab, ROW_LEN)
    net = bert(len(vocab))
    tokens, segments, valid_lens = (np.array(a) for a in packed[:3])
    encoded, _, nsp = net(tokens, segments, valid_lens, None,
                          np.array(packed[7]), np.array(packed[8]))
    assert nsp.shape == (len(tokens), round(0.15 * ROW_LEN), 2)
    r = int(onp.flatnonzero(packed[9].sum(axis=1) > 1)[0])
    c = 1  # the second pair of a row that holds several
    start, n = pair_spans(packed, r)[c]
    alone = net(tokens[r:r + 1, start:start + n],
                segments[r:r + 1, start:start + n])
    onp.testing.assert_allclose(encoded[r, start:start + n].asnumpy(),
                                alone[0][0].asnumpy(), rtol=1e-4, atol=1e-5)
    onp.testing.assert_allclose(nsp[r, c].asnumpy(), alone[2][0].asnumpy(),
                                rtol=1e-4, atol=1e-5)


def test_attention_mask_is_block_diagonal_without_padding_keys():
    positions = np.array([[0, 1, 2, 0, 1, 0, 0, 0]])
    mask = d2l.attention_mask(mx.nd, np.array([5.0]), positions)[0].asnumpy()
    expected = onp.zeros((8, 8))
    expected[:3, :3] = expected[3:5, 3:5] = 1
    expected[5:, :] = 0
    assert (mask[:, 5:] == 0).all()
    assert (mask[:5] == expected[:5]).all()


def test_positions_beyond_the_position_table_are_refused(examples):
    arrays, vocab = examples
    packed = d2l.pack_examples(arrays, vocab, ROW_LEN)
    net = bert(len(vocab), max_len=8)  # pairs here have up to 16 tokens
    with pytest.raises(ValueError, match=r'position id \d+ is outside \[0, 8\)'):
        net(*(np.array(a) for a in packed[:3]), None, np.array(packed[7]))
    net = bert(len(vocab))
    with pytest.raises(ValueError, match='cls_positions must have shape'):
        net(*(np.array(a) for a in packed[:3]), None, np.array(packed[7]),
            np.array(packed[8][:1]))


def test_evaluate_bert_scores_packed_as_padded(examples):
    arrays, vocab = examples
    packed = d2l.pack_examples(arrays, vocab, ROW_LEN)
    net = bert(len(vocab))
    scores = [d2l.evaluate_bert(net, [[np.array(a) for a in batch]],
                                npx.cpu())
              for batch in (arrays, packed)]
    assert scores[0]['num_pairs'] == scores[1]['num_pairs'] == len(arrays[0])
    for key in ('mlm_ce', 'mlm_acc', 'nsp_ce', 'nsp_acc'):
        assert scores[1][key] == pytest.approx(scores[0][key], rel=1e-5)


def test_train_step_counts_packed_pairs_for_the_nsp_mean(examples):
    arrays, vocab = examples
    packed = [np.array(a) for a in d2l.pack_examples(arrays, vocab, ROW_LEN)]
    net = bert(len(vocab))
    step_loss, trainer = d2l.pretraining_step(
        net, d2l.CrossEntropyLoss(), len(vocab), 'sgd',
        optimizer_params={'learning_rate': 0.0})
    (mlm, nsp), = d2l.train_step(step_loss, trainer, packed, [npx.cpu()])
    _, nsp_mean, _ = mean_losses_and_grads(bert(len(vocab)), packed,
                                           len(vocab))
    assert float(nsp) == pytest.approx(nsp_mean, rel=1e-5)


def test_a_packed_step_on_two_devices_updates_as_on_one(examples):
    arrays, vocab = examples
    packed = [np.array(a) for a in d2l.pack_examples(arrays, vocab, ROW_LEN)]
    updated = []
    for devices in ([mx.cpu(0)], [mx.cpu(0), mx.cpu(1)]):
        net = bert(len(vocab))
        net.collect_params().reset_ctx(devices)
        step_loss, trainer = d2l.pretraining_step(
            net, d2l.CrossEntropyLoss(), len(vocab), 'sgd',
            optimizer_params={'learning_rate': 0.1})
        d2l.train_step(step_loss, trainer, packed, devices)
        updated.append([p.data(devices[0]).asnumpy()
                        for p in net.collect_params().values()])
    initial = [p.data().asnumpy()
               for p in bert(len(vocab)).collect_params().values()]
    assert not all(onp.allclose(a, b) for a, b in zip(initial, updated[0]))
    for one, two in zip(*updated):
        onp.testing.assert_allclose(two, one, rtol=1e-4, atol=1e-6)
