"""The transformer encoder and BERT: masking, modes, gradients, errors."""

import random

import mxnet as mx
import numpy as onp
import pytest
from mxnet import autograd, init, np
from mxnet.gluon import nn

from d2l import mxnet as d2l

SMALL = dict(vocab_size=50, num_hiddens=16, ffn_num_hiddens=32, num_heads=2,
             num_layers=2)
VALID_LENS = [10, 7, 4]


def seed(value=0):
    random.seed(value)
    onp.random.seed(value)
    mx.random.seed(value)


def make_net(dropout=0.0, max_len=20, hybridize=False):
    seed()
    net = d2l.BERTModel(dropout=dropout, max_len=max_len, **SMALL)
    net.initialize(init.Xavier())
    if hybridize:
        net.hybridize()
    return net


def make_batch():
    """Three sequences of length 10; valid lengths 10, 7 and 4; a pair each."""
    rng = onp.random.RandomState(1)
    tokens = rng.randint(0, SMALL['vocab_size'], size=(3, 10))
    segments = onp.zeros((3, 10))
    for i, n in enumerate(VALID_LENS):
        segments[i, n // 2:n] = 1
    pred_positions = [[1, 9, 4], [0, 6, 2], [3, 1, 0]]  # all valid positions
    return (np.array(tokens, dtype='int32'), np.array(segments, dtype='int32'),
            np.array(VALID_LENS, dtype='float32'),
            np.array(pred_positions, dtype='int32'))


def assert_all_close(xs, ys, atol=1e-5):
    for x, y in zip(xs, ys):
        onp.testing.assert_allclose(x.asnumpy(), y.asnumpy(), rtol=1e-4,
                                    atol=atol)


def test_get_tokens_and_segments():
    assert d2l.get_tokens_and_segments(['a', 'b']) == (
        ['<cls>', 'a', 'b', '<sep>'], [0, 0, 0, 0])
    assert d2l.get_tokens_and_segments(['a', 'b'], ['c']) == (
        ['<cls>', 'a', 'b', '<sep>', 'c', '<sep>'], [0, 0, 0, 0, 1, 1])


def key_mask(valid_lens, num_queries, num_keys):
    """A (B, T, K) mask that shows each row's first valid_lens keys."""
    mask = onp.zeros((len(valid_lens), num_queries, num_keys), onp.float32)
    for i, n in enumerate(valid_lens):
        mask[i, :, :n] = 1
    return np.array(mask)


def test_padding_mask_shows_the_valid_keys_to_every_query():
    X = np.zeros((2, 5, 3))
    mask = d2l.padding_mask(mx.nd, np.array([2, 5]), X)
    assert (mask.asnumpy() == key_mask([2, 5], 5, 5).asnumpy()).all()


def test_masked_softmax_gives_padded_keys_no_weight():
    X = np.random.normal(size=(2, 3, 5))
    weights = d2l.masked_softmax(mx.nd, X, key_mask([2, 5], 3, 5)).asnumpy()
    for i, n in enumerate([2, 5]):
        scores = X[i, :, :n].asnumpy()
        expected = onp.exp(scores) / onp.exp(scores).sum(-1, keepdims=True)
        onp.testing.assert_allclose(weights[i, :, :n], expected, rtol=1e-5)
        assert (weights[i, :, n:] == 0).all()


def test_output_shapes():
    tokens, segments, valid_lens, pred_positions = make_batch()
    encoded_X, mlm_Y_hat, nsp_Y_hat = make_net()(tokens, segments, valid_lens,
                                                 pred_positions)
    assert encoded_X.shape == (3, 10, SMALL['num_hiddens'])
    assert mlm_Y_hat.shape == (3, 3, SMALL['vocab_size'])
    assert nsp_Y_hat.shape == (3, 2)
    assert make_net()(tokens, segments, valid_lens)[1] is None


def test_heads_read_the_right_positions():
    seed()
    X = np.random.normal(size=(3, 10, 16))
    mlm, nsp = d2l.MaskLM(50, 16), d2l.NextSentencePred(16)
    mlm.initialize()
    nsp.initialize()
    pred_positions = make_batch()[3]
    mlm_Y_hat = mlm(X, pred_positions)
    for i, row in enumerate(pred_positions.asnumpy()):
        for j, position in enumerate(row):
            expected = mlm.decoder(mlm.transform(X[i, int(position)]))
            assert_all_close([mlm_Y_hat[i, j]], [expected])
    # NSP scores each <cls> vector it is given, one per row or several
    several = nsp(X[:, :3])
    assert several.shape == (3, 3, 2)
    for c in range(3):
        assert_all_close([several[:, c]], [nsp(X[:, c])])


@pytest.mark.parametrize('hybridize', [False, True])
def test_padding_does_not_change_valid_outputs(hybridize):
    net = make_net(hybridize=hybridize)
    tokens, segments, valid_lens, pred_positions = make_batch()
    before = net(tokens, segments, valid_lens, pred_positions)
    tokens, segments = tokens.asnumpy(), segments.asnumpy()
    rng = onp.random.RandomState(2)
    for i, n in enumerate(VALID_LENS):
        tokens[i, n:] = rng.randint(0, SMALL['vocab_size'], size=10 - n)
        segments[i, n:] = 1 - segments[i, n:]
    after = net(np.array(tokens, dtype='int32'),
                np.array(segments, dtype='int32'), valid_lens, pred_positions)
    for i, n in enumerate(VALID_LENS):
        assert_all_close([before[0][i, :n]], [after[0][i, :n]], atol=1e-6)
    assert_all_close(before[1:], after[1:], atol=1e-6)


@pytest.mark.parametrize('hybridize', [False, True])
def test_valid_lens_none_means_every_position_is_valid(hybridize):
    net = make_net(hybridize=hybridize)
    tokens, segments, _, pred_positions = make_batch()
    full = np.full((3,), 10, dtype='float32')
    assert_all_close(net(tokens, segments, None, pred_positions),
                     net(tokens, segments, full, pred_positions))


def test_hybridized_equals_imperative():
    net = make_net(dropout=0.5)
    batch = make_batch()
    imperative = net(*batch)  # predict mode: dropout is off

    class Wrapper(nn.HybridBlock):
        """Calls the model in hybrid_forward, as the pretraining loss does."""
        def __init__(self, net):
            super().__init__()
            self.net = net

        def hybrid_forward(self, F, *args):
            return self.net(*args)

    wrapper = Wrapper(net)
    wrapper.hybridize(static_alloc=True, static_shape=True)
    net.hybridize()
    assert_all_close(imperative, net(*batch))
    assert_all_close(imperative, wrapper(*batch))


@pytest.mark.parametrize('num_heads', [1, 2])
def test_heads_equal_plain_attention_with_their_projections(num_heads):
    seed()
    attention = d2l.MultiHeadAttention(8, num_heads, dropout=0.0)
    attention.initialize(init.Normal(1.0))
    queries = np.random.normal(size=(2, 3, 8))
    keys_values = np.random.normal(size=(2, 5, 8))
    valid_lens = [2, 5]
    out = attention(queries, keys_values, keys_values,
                    key_mask(valid_lens, 3, 5))

    def dense(layer, X):
        W, b = layer.weight.data().asnumpy(), layer.bias.data().asnumpy()
        return X @ W.T + b

    def plain_attention(q, k, v):
        scores = q @ k.transpose(0, 2, 1) / onp.sqrt(q.shape[-1])
        for i, n in enumerate(valid_lens):
            scores[i, :, n:] = -onp.inf
        weights = onp.exp(scores - scores.max(axis=-1, keepdims=True))
        return weights / weights.sum(axis=-1, keepdims=True) @ v

    q, kv = queries.asnumpy(), keys_values.asnumpy()
    heads = [plain_attention(dense(h.W_q, q), dense(h.W_k, kv),
                             dense(h.W_v, kv)) for h in attention.heads]
    expected = dense(attention.W_o, onp.concatenate(heads, axis=-1))
    onp.testing.assert_allclose(out.asnumpy(), expected, rtol=1e-4, atol=1e-4)


@pytest.mark.parametrize('by_matmul', [True, False])
def test_layer_norm_matches_gluon_forward_and_backward(by_matmul):
    seed()
    ln, gluon_ln = d2l.LayerNorm(6, by_matmul=by_matmul), nn.LayerNorm()
    ln.initialize()
    gluon_ln.initialize()
    X = np.random.normal(size=(2, 4, 6))
    gluon_ln(X)
    gamma, beta = np.random.normal(size=6), np.random.normal(size=6)
    for layer in (ln, gluon_ln):
        layer.gamma.set_data(gamma)
        layer.beta.set_data(beta)
    ln.hybridize()
    head_grad = np.random.normal(size=(2, 4, 6))
    grads = []
    for layer in (ln, gluon_ln):
        X.attach_grad()
        with autograd.record():
            Y = layer(X)
        Y.backward(head_grad)
        grads.append([Y, X.grad.copy(), layer.gamma.grad(), layer.beta.grad()])
    assert_all_close(*grads)


def test_dropout_acts_in_training_mode_only():
    net = make_net(dropout=0.5)
    batch = make_batch()
    predicted = net(*batch)
    assert_all_close(predicted, net(*batch), atol=0)
    with autograd.record(train_mode=False):
        assert_all_close(predicted, net(*batch), atol=0)
    with autograd.record(train_mode=True):
        trained = [net(*batch), net(*batch)]
    for outputs in ([predicted, trained[0]], [trained[0], trained[1]]):
        for a, b in zip(*outputs):
            assert not onp.allclose(a.asnumpy(), b.asnumpy())


@pytest.mark.parametrize('hybridize', [False, True])
def test_every_parameter_gets_a_gradient(hybridize):
    net = make_net(hybridize=hybridize)
    batch = make_batch()
    with autograd.record():
        outputs = net(*batch)
        # Random weights, so that no gradient cancels out by symmetry
        loss = sum((out * np.random.normal(size=out.shape)).sum()
                   for out in outputs)
    loss.backward()
    params = net.collect_params()
    assert net.encoder.position_table.weight in params.values()
    for name, param in params.items():
        assert float(np.abs(param.grad()).max()) > 0, name


def test_same_seed_same_training_outputs():
    outputs = []
    for _ in range(2):
        net = make_net(dropout=0.5)
        seed(3)
        with autograd.record():
            outputs.append(net(*make_batch()))
    assert_all_close(*outputs, atol=0)


def test_num_hiddens_must_split_evenly_into_heads():
    message = 'num_hiddens=130 is not divisible by num_heads=4'
    with pytest.raises(ValueError, match=message):
        d2l.MultiHeadAttention(130, 4, dropout=0.1)
    with pytest.raises(ValueError, match='num_hiddens=18 .* num_heads=4'):
        d2l.BERTModel(50, num_hiddens=18, ffn_num_hiddens=8, num_heads=4,
                      num_layers=1, dropout=0.1)


@pytest.mark.parametrize('hybridize', [False, True])
def test_a_sequence_longer_than_max_len_is_refused(hybridize):
    net = make_net(max_len=8, hybridize=hybridize)
    tokens, segments, valid_lens, pred_positions = make_batch()
    with pytest.raises(ValueError,
                       match='sequence length 10 exceeds max_len=8'):
        net(tokens, segments, valid_lens, pred_positions)


def test_segments_must_match_tokens():
    tokens, segments, valid_lens, _ = make_batch()
    with pytest.raises(ValueError, match=r'got \(3, 10\) and \(3, 9\)'):
        make_net()(tokens, segments[:, :9], valid_lens)


@pytest.mark.parametrize('hybridize', [False, True])
@pytest.mark.parametrize('i, j, value', [(1, 2, 10), (0, 0, -1), (2, 1, 25)])
def test_pred_positions_outside_the_sequence_are_refused(hybridize, i, j,
                                                         value):
    net = make_net(hybridize=hybridize)
    tokens, segments, valid_lens, pred_positions = make_batch()
    pred_positions[i, j] = value
    with pytest.raises(ValueError, match=rf'pred_positions\[{i}, {j}\] = '
                       rf'{value} is outside the sequence of length 10'):
        net(tokens, segments, valid_lens, pred_positions)


def test_pred_positions_must_have_one_row_per_example():
    tokens, segments, valid_lens, pred_positions = make_batch()
    with pytest.raises(ValueError, match=r'shape \(batch_size=3, num_preds\),'
                       r' got \(2, 3\)'):
        make_net()(tokens, segments, valid_lens, pred_positions[:2])


@pytest.mark.parametrize('hybridize', [False, True])
@pytest.mark.parametrize('field, value, message', [
    (0, 50, 'token id 50 is outside \\[0, 50\\)'),
    (0, -1, 'token id -1 is outside'),
    (1, 2, 'segment id 2 is outside \\[0, 2\\)')])
def test_ids_outside_their_tables_are_refused(hybridize, field, value, message):
    net = make_net(hybridize=hybridize)
    batch = list(make_batch())
    ids = batch[field].asnumpy()
    ids[1, 3] = value
    batch[field] = np.array(ids, dtype='int32')
    with pytest.raises(ValueError, match=message):
        net(*batch)
