"""Time the chapter's layer choices forward and backward, side by side.

On a pretraining batch (512 sequences of 64 positions, 128 features), in one
process, this times

* layer normalization: Gluon's ``nn.LayerNorm``, the plain formula
  (``d2l.LayerNorm(by_matmul=False)``) and the matrix-product version
  (``d2l.LayerNorm``);
* multi-head self-attention with 2 heads: the chapter's per-head layout
  (``d2l.MultiHeadAttention``) and the common layout that projects all heads
  at once and folds them into the batch with reshapes and transposes;
* the masked softmax of one head's attention scores, (512, 64, 64), with
  its mask built from ``valid_lens`` in the pass: a mask of shape (B, 1, K)
  that broadcasts over the queries against the chapter's mask of the full
  shape (B, T, K) (``d2l.masked_softmax`` with ``d2l.padding_mask``);
* putting the outputs of 2 heads, (512, 64, 64) each, side by side:
  ``np.concatenate`` along the last axis against stacking them on a new axis
  and merging it with the features (the chapter's);
* the MLM output layer and cross-entropy of 5,120 prediction slots (10 for
  each of 512 pairs) over a vocabulary of ``--vocab-size`` tokens, the scores
  computed in the graph as in a training step: Gluon's ``SoftmaxCELoss``, the
  chapter's ``CrossEntropyLoss`` through ``log_softmax`` and through
  ``softmax`` with an output type (its default), and the same through
  ``softmax`` without one.

Each layer is hybridized with static memory; rounds alternate between the
variants, and the fastest pass of each is reported with its ratio to the
first variant of its group. Run it with and without OMP_NUM_THREADS set:

    python benchmarks/bench_layers.py
    OMP_NUM_THREADS=$(nproc) python benchmarks/bench_layers.py
"""

import argparse
import os
import time

from mxnet import autograd, gluon, np, npx
from mxnet.gluon import nn

from d2l import mxnet as d2l

npx.set_np()
B, T, H, HEADS = 512, 64, 128, 2


class FoldedHeadsAttention(nn.HybridBlock):
    """Multi-head self-attention with one projection for all heads."""
    def __init__(self, num_hiddens, num_heads, dropout):
        super().__init__()
        self.num_heads = num_heads
        self.W_q = nn.Dense(num_hiddens, flatten=False)
        self.W_k = nn.Dense(num_hiddens, flatten=False)
        self.W_v = nn.Dense(num_hiddens, flatten=False)
        self.W_o = nn.Dense(num_hiddens, flatten=False)
        self.attention = d2l.DotProductAttention(num_hiddens // num_heads, dropout)

    def fold(self, F, X):
        """(B, T, H) -> (B * heads, T, H / heads)."""
        X = F.npx.reshape(X, (-2, -2, self.num_heads, -1))
        return F.npx.reshape(F.np.transpose(X, (0, 2, 1, 3)), (-5, -2, -2))

    def hybrid_forward(self, F, queries, keys, values, mask):
        Q, K, V = (self.fold(F, W(X)) for W, X in (
            (self.W_q, queries), (self.W_k, keys), (self.W_v, values)))
        mask = F.np.repeat(mask, self.num_heads, axis=0)       # (B*h, T, K)
        out = self.attention(Q, K, V, mask)                    # (B*h, T, d)
        out = F.npx.reshape(out, (-6, -1, self.num_heads, -2, -2))
        out = F.np.transpose(out, (0, 2, 1, 3))                # (B, T, h, d)
        return self.W_o(F.npx.reshape(out, (-2, -2, -5)))      # (B, T, H)


class SelfAttention(nn.HybridBlock):
    """Call a multi-head attention layer with queries = keys = values."""
    def __init__(self, attention):
        super().__init__()
        self.attention = attention

    def hybrid_forward(self, F, X, valid_lens):
        return self.attention(X, X, X, d2l.padding_mask(F, valid_lens, X))


class MaskedSoftmax(nn.HybridBlock):
    """Masked softmax of scores (B, T, K), its mask built from valid_lens."""
    def __init__(self, full_mask):
        super().__init__()
        self.full_mask = full_mask

    def hybrid_forward(self, F, scores, valid_lens):
        if self.full_mask:  # the chapter's: mask (B, T, K)
            mask = d2l.padding_mask(F, valid_lens, scores)
            return d2l.masked_softmax(F, scores, mask)
        key_index = F.npx.arange_like(scores, axis=-1).astype('float32')  # (K,)
        lens = F.np.reshape(valid_lens.astype('float32'), (-1, 1, 1))    # (B, 1, 1)
        mask = (key_index < lens).astype('float32')                      # (B, 1, K)
        return F.npx.softmax(scores - 1e6 * (1 - mask))


class SideBySide(nn.HybridBlock):
    """Put two heads' outputs side by side; return the sum of the result."""
    def __init__(self, by_stack):
        super().__init__()
        self.by_stack = by_stack

    def hybrid_forward(self, F, a, b):
        if self.by_stack:
            out = F.npx.reshape(F.np.stack([a, b], axis=2), (-2, -2, -5))
        else:
            out = F.np.concatenate([a, b], axis=-1)
        return out.sum()


class SoftmaxCE(gluon.loss.Loss):
    """-log softmax(scores)[y], the softmax without an output type."""
    def __init__(self):
        super().__init__(weight=None, batch_axis=0)

    def hybrid_forward(self, F, scores, labels, sample_weight):
        probs = F.npx.softmax(scores)                             # (N, C)
        ce = -F.np.log(F.npx.pick(probs, labels) + 1e-30)         # (N,)
        return ce * sample_weight.reshape(-1)


class DecodedLoss(nn.HybridBlock):
    """The weighted sum of a loss over the scores of an output layer."""
    def __init__(self, vocab_size, loss):
        super().__init__()
        self.decoder = nn.Dense(vocab_size)
        self.loss = loss

    def hybrid_forward(self, F, X, labels, weights):
        scores = self.decoder(X)                        # (N, V), not a leaf
        return self.loss(scores, labels, weights.reshape(-1, 1)).sum()


def one_pass(layer, inputs):
    """Seconds of one forward and backward pass."""
    tic = time.perf_counter()
    with autograd.record():
        Y = layer(*inputs)
    Y.backward()
    npx.waitall()
    return time.perf_counter() - tic


def compare(variants, inputs, rounds):
    """Fastest pass of each variant, rounds interleaved."""
    for layer in variants.values():
        layer.initialize()
        layer.hybridize(static_alloc=True, static_shape=True)
        one_pass(layer, inputs)  # builds the graph
    best = dict.fromkeys(variants, float('inf'))
    for _ in range(rounds):
        for name, layer in variants.items():
            best[name] = min(best[name], one_pass(layer, inputs))
    return best


def head_outputs():
    """Two heads' outputs for a pretraining batch, with gradients."""
    outputs = [np.random.normal(size=(B, T, H // HEADS)) for _ in range(HEADS)]
    for x in outputs:
        x.attach_grad()
    return outputs


def attention_scores():
    """One head's attention scores for a pretraining batch, with gradients."""
    scores = np.random.normal(size=(B, T, T))
    scores.attach_grad()
    return scores


def mlm_inputs(vocab_size):
    """Features, labels and weights of the 10 prediction slots of 512 pairs."""
    X = np.random.normal(size=(B * 10, H))
    X.attach_grad()
    labels = np.random.randint(0, vocab_size, size=(B * 10,))
    weights = (np.random.uniform(size=(B * 10,)) < 0.7).astype('float32')
    return [X, labels, weights]


def main():
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('--rounds', type=int, default=10)
    parser.add_argument('--vocab-size', type=int, default=6827)
    args = parser.parse_args()
    V = args.vocab_size
    X = np.random.normal(size=(B, T, H))
    X.attach_grad()
    valid_lens = np.random.randint(8, T + 1, size=(B,)).astype('float32')
    groups = {
        'layer normalization': (compare({
            'nn.LayerNorm': nn.LayerNorm(),
            'LayerNorm(by_matmul=False)': d2l.LayerNorm(H, by_matmul=False),
            'LayerNorm (by_matmul=True)': d2l.LayerNorm(H)}, [X], args.rounds)),
        'self-attention, 2 heads': (compare({
            'per-head (chapter)': SelfAttention(d2l.MultiHeadAttention(H, HEADS, 0.1)),
            'folded heads': SelfAttention(FoldedHeadsAttention(H, HEADS, 0.1))},
            [X, valid_lens], args.rounds)),
        'masked softmax of attention scores': (compare({
            'mask (B, 1, K), broadcast': MaskedSoftmax(False),
            'mask (B, T, K) (chapter)': MaskedSoftmax(True)},
            [attention_scores(), valid_lens], args.rounds)),
        'two heads side by side': (compare({
            'np.concatenate': SideBySide(False),
            'stack and merge (chapter)': SideBySide(True)},
            head_outputs(), args.rounds)),
        f'MLM output layer and cross-entropy, vocabulary {V}': (compare({
            'gluon.loss.SoftmaxCELoss': DecodedLoss(V, gluon.loss.SoftmaxCELoss()),
            'by log_softmax': DecodedLoss(V, d2l.CrossEntropyLoss(by_softmax=False)),
            'by softmax, no dtype': DecodedLoss(V, SoftmaxCE()),
            'by softmax (chapter)': DecodedLoss(V, d2l.CrossEntropyLoss())},
            mlm_inputs(V), args.rounds))}
    print(f'OMP_NUM_THREADS={os.environ.get("OMP_NUM_THREADS", "unset")}, '
          f'batch ({B}, {T}, {H}), fastest of {args.rounds} forward+backward passes')
    for group, best in groups.items():
        first = next(iter(best.values()))
        print(group)
        for name, seconds in best.items():
            print(f'  {name:>28}: {seconds * 1e3:7.1f} ms  {first / seconds:5.2f}x')


if __name__ == '__main__':
    main()
