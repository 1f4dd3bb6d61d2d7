"""The d2l library for MXNet Gluon, saved from the notebooks of chapter_bert.

Everything below the banner is written by ``d2lbook build lib`` from the
notebook cells marked ``#@save``: edit the notebooks, not this file.
"""

import collections
import io
import json
import math
import os
import re
import shutil
import sys
import tempfile
import time

import mxnet as mx
import numpy as onp
from IPython import display, get_ipython
from matplotlib.figure import Figure
from mxnet import autograd, gluon, init, np, npx
from mxnet.gluon import nn
from tqdm import tqdm

from d2l.data import (DATA_HUB, DataError, data_dir, download,  # noqa: F401
                      download_extract, hub_entry, hub_overridden, sha1sum)

d2l = sys.modules[__name__]
npx.set_np()

#################   WARNING   ################
# The below part is generated automatically through:
#    d2lbook build lib
# Don't edit it directly

def gpu_info(i):
    """Return the name and the compute capability (major, minor) of GPU i.

    Defined in :numref:`sec_tools`"""
    import ctypes
    cuda = ctypes.CDLL('libcuda.so.1')
    device, major, minor = ctypes.c_int(), ctypes.c_int(), ctypes.c_int()
    name = ctypes.create_string_buffer(128)
    # 75 and 76 are CU_DEVICE_ATTRIBUTE_COMPUTE_CAPABILITY_MAJOR and _MINOR
    calls = [('cuInit', 0), ('cuDeviceGet', ctypes.byref(device), i),
             ('cuDeviceGetName', name, len(name), device),
             ('cuDeviceGetAttribute', ctypes.byref(major), 75, device),
             ('cuDeviceGetAttribute', ctypes.byref(minor), 76, device)]
    for function, *args in calls:
        status = getattr(cuda, function)(*args)
        if status != 0:
            raise RuntimeError(f'CUDA driver: {function} failed with error '
                               f'{status} while asking about gpu({i})')
    return name.value.decode(), (major.value, minor.value)

def usable_gpus():
    """Return the GPUs that MXNet 1.9.1 has code for; warn about the others.

    Defined in :numref:`sec_tools`"""
    usable, left_out = [], []
    for i in range(npx.num_gpus()):
        name, (major, minor) = gpu_info(i)
        if 5 <= major <= 8:
            usable.append(npx.gpu(i))
        else:
            left_out.append(f'gpu({i}) {name}, compute capability '
                            f'{major}.{minor}')
    if left_out:
        import warnings
        warnings.warn(
            f'MXNet cannot compute on {"; ".join(left_out)}: the CUDA wheels '
            f'of MXNet 1.9.1, its last release, carry code for compute '
            f'capability 5.0 to 8.6 only. Those GPUs are left out: the code '
            f'runs on the remaining GPUs, or on the CPU if none remain (the '
            f'chapter\'s small BERT trains on a CPU too).', stacklevel=1)
    return usable

def try_gpu(i=0):
    """Return gpu(i) if MXNet can compute on it, otherwise cpu().

    Defined in :numref:`sec_tools`"""
    return npx.gpu(i) if npx.gpu(i) in usable_gpus() else npx.cpu()

def try_all_gpus():
    """Return the GPUs MXNet can compute on, or [cpu()] if there are none.

    Defined in :numref:`sec_tools`"""
    return usable_gpus() or [npx.cpu()]

class Timer:
    """A stopwatch that remembers the length of every lap it timed."""
    def __init__(self):
        """Defined in :numref:`sec_tools`"""
        self.laps = []
        self.start()

    def start(self):
        """Begin a lap."""
        self.began = time.perf_counter()

    def stop(self):
        """End the lap; record its length in seconds and return it."""
        self.laps.append(time.perf_counter() - self.began)
        return self.laps[-1]

class Animator:
    """Plot curves point by point, redrawing one figure in place."""
    def __init__(self, xlabel=None, ylabel=None, legend=(), xlim=None):
        """Defined in :numref:`sec_tools`"""
        self.fig = Figure(figsize=(4, 2.6))
        self.axes = self.fig.add_subplot()
        self.labels = dict(xlabel=xlabel, ylabel=ylabel, xlim=xlim)
        self.legend = list(legend)
        self.curves = collections.defaultdict(lambda: ([], []))
        self.display, self.drawn_at = None, -math.inf

    def add(self, x, ys):
        """Add (x, y) to curve i for each y in ys; redraw at most once a second."""
        ys = ys if isinstance(ys, (list, tuple)) else [ys]
        for i, y in enumerate(ys):
            if y is not None:  # None: no point for this curve at this x
                self.curves[i][0].append(x)
                self.curves[i][1].append(float(y))
        if time.perf_counter() - self.drawn_at >= 1:
            self.draw()

    def draw(self):
        """Redraw every curve; in Jupyter, replace the figure on the page."""
        self.drawn_at = time.perf_counter()
        self.axes.cla()
        for i, (xs, ys) in sorted(self.curves.items()):
            self.axes.plot(xs, ys, linestyle=('-', '--', '-.', ':')[i % 4])
        self.axes.set(**self.labels)
        if self.legend:
            self.axes.legend(self.legend)
        self.axes.grid(alpha=0.3)
        self.fig.tight_layout()
        if get_ipython() is not None:
            svg = display.SVG(self._repr_svg_())
            if self.display is None:
                self.display = display.display(svg, display_id=True)
            else:
                self.display.update(svg)

    def _repr_svg_(self):
        buffer = io.StringIO()
        self.fig.savefig(buffer, format='svg')
        return buffer.getvalue()

def tokenize(lines, token='word'):
    """Cut every line into a list of word or character tokens.

    Defined in :numref:`sec_tools`"""
    cut = {'word': str.split, 'char': list}.get(token)
    if cut is None:
        raise ValueError(f"unknown token type {token!r}: expected 'word' or "
                         "'char'")
    return [cut(line) for line in lines]

class Vocab:
    """Token indices: <unk> is 0, reserved tokens next, then by frequency."""
    def __init__(self, tokens=(), min_freq=0, reserved_tokens=()):
        """Count tokens (or lines of tokens); index the frequent ones.

        Defined in :numref:`sec_tools`"""
        if tokens and not isinstance(tokens[0], str):  # a list of lines
            tokens = [token for line in tokens for token in line]
        self.token_freqs = collections.Counter(tokens).most_common()
        self.idx_to_token = ['<unk>', *reserved_tokens]
        special = set(self.idx_to_token)
        self.idx_to_token.extend(token for token, count in self.token_freqs
                                 if count >= min_freq and token not in special)
        self.token_to_idx = dict(zip(self.idx_to_token,
                                     range(len(self.idx_to_token))))

    def __getitem__(self, tokens):
        """Index of a token, or the list of indices of a list of tokens."""
        if isinstance(tokens, (list, tuple)):
            return [self.token_to_idx.get(token, 0) for token in tokens]
        return self.token_to_idx.get(tokens, 0)

    def to_tokens(self, indices):
        """Token of an index, or the list of tokens of a list of indices."""
        if isinstance(indices, (list, tuple)):
            return [self.idx_to_token[int(i)] for i in indices]
        return self.idx_to_token[int(indices)]

    @property
    def unk(self):
        """Index of the unknown token."""
        return 0

    def __len__(self):
        return len(self.idx_to_token)

def masked_softmax(F, X, mask):
    """Softmax over the last axis of X that gives keys masked by 0 no weight.

    Defined in :numref:`sec_transformer-encoder`"""
    return F.npx.softmax(X - 1e6 * (1 - mask))  # X, mask: (B, T, K)

def padding_mask(F, valid_lens, X):
    """The self-attention mask of X's T positions: 1 for each real key.

    Defined in :numref:`sec_transformer-encoder`"""
    key_index = F.npx.arange_like(X, axis=1).astype('float32')      # (T,)
    key_index = F.np.zeros_like(F.np.expand_dims(key_index, 1)) + key_index
    lens = F.np.reshape(valid_lens.astype('float32'), (-1, 1, 1))   # (B, 1, 1)
    return (key_index < lens).astype('float32')                     # (B, T, T)

class DotProductAttention(nn.HybridBlock):
    """Scaled dot-product attention with dropout on the attention weights.

    Defined in :numref:`sec_transformer-encoder`"""
    def __init__(self, key_size, dropout, **kwargs):
        super().__init__(**kwargs)
        self.scale = 1 / math.sqrt(key_size)
        self.dropout = nn.Dropout(dropout)

    def hybrid_forward(self, F, queries, keys, values, mask):
        # queries: (B, T, d); keys: (B, K, d); values: (B, K, v)
        scores = F.npx.batch_dot(queries * self.scale, keys,
                                 transpose_b=True)           # (B, T, K)
        weights = masked_softmax(F, scores, mask)            # (B, T, K)
        return F.npx.batch_dot(self.dropout(weights), values)  # (B, T, v)

class AttentionHead(nn.HybridBlock):
    """One attention head, with its own projections of its three inputs.

    Defined in :numref:`sec_transformer-encoder`"""
    def __init__(self, head_size, dropout, **kwargs):
        super().__init__(**kwargs)
        self.W_q = nn.Dense(head_size, flatten=False)
        self.W_k = nn.Dense(head_size, flatten=False)
        self.W_v = nn.Dense(head_size, flatten=False)
        self.attention = DotProductAttention(head_size, dropout)

    def hybrid_forward(self, F, queries, keys, values, mask):
        # queries: (B, T, H); keys, values: (B, K, H) -> output (B, T, d)
        return self.attention(self.W_q(queries), self.W_k(keys),
                              self.W_v(values), mask)

class MultiHeadAttention(nn.HybridBlock):
    """Multi-head attention: heads side by side, then an output projection.

    Defined in :numref:`sec_transformer-encoder`"""
    def __init__(self, num_hiddens, num_heads, dropout, **kwargs):
        super().__init__(**kwargs)
        if num_heads < 1 or num_hiddens % num_heads:
            raise ValueError(f'num_hiddens={num_hiddens} is not divisible by '
                             f'num_heads={num_heads}')
        self.heads = nn.HybridSequential()
        for _ in range(num_heads):
            self.heads.add(AttentionHead(num_hiddens // num_heads, dropout))
        self.W_o = nn.Dense(num_hiddens, flatten=False)

    def hybrid_forward(self, F, queries, keys, values, mask):
        outputs = F.np.stack([head(queries, keys, values, mask)
                              for head in self.heads], axis=2)  # (B, T, h, d)
        # side by side: merge the last two axes, (B, T, h * d) = (B, T, H)
        return self.W_o(F.npx.reshape(outputs, (-2, -2, -5)))  # (B, T, H)

class PositionWiseFFN(nn.HybridBlock):
    """The same two-layer network, applied at every position.

    Defined in :numref:`sec_transformer-encoder`"""
    def __init__(self, ffn_num_hiddens, num_hiddens, **kwargs):
        super().__init__(**kwargs)
        self.dense1 = nn.Dense(ffn_num_hiddens, flatten=False)
        self.gelu = nn.GELU()
        self.dense2 = nn.Dense(num_hiddens, flatten=False)

    def hybrid_forward(self, F, X):
        # X: (B, T, H) -> (B, T, ffn_num_hiddens) -> (B, T, H)
        return self.dense2(self.gelu(self.dense1(X)))

def layer_norm(F, X, gamma, beta, eps):
    """Normalize each token's features, then scale by gamma, shift by beta.

    Defined in :numref:`sec_transformer-encoder`"""
    mu = F.np.mean(X, axis=-1, keepdims=True)                  # (B, T, 1)
    var = F.np.mean(F.np.square(X - mu), axis=-1, keepdims=True)  # (B, T, 1)
    return (X - mu) / F.np.sqrt(var + eps) * gamma + beta      # (B, T, H)

def layer_norm_by_matmul(F, X, gamma, beta, eps, num_hiddens):
    """layer_norm with every sum over features written as a matrix product.

    Defined in :numref:`sec_transformer-encoder`"""
    def times(A, W, num_outputs):  # A @ W.T over the last axis of A
        return F.npx.fully_connected(A, W, num_hidden=num_outputs,
                                     no_bias=True, flatten=False)
    H = num_hiddens
    mean_of = F.np.full((1, H), 1 / H)                        # (1, H)
    copy_to = F.np.ones((H, 1))                               # (H, 1)
    X = X - times(times(X, mean_of, 1), copy_to, H)           # (B, T, H)
    inv_std = 1 / F.np.sqrt(times(X * X, mean_of, 1) + eps)   # (B, T, 1)
    scale = times(inv_std, F.np.reshape(gamma, (-1, 1)), H)   # (B, T, H)
    shift = times(F.np.ones_like(inv_std), F.np.reshape(beta, (-1, 1)), H)
    return X * scale + shift                                  # (B, T, H)

class LayerNorm(nn.HybridBlock):
    """Layer normalization over the last axis, optionally by matrix products.

    Defined in :numref:`sec_transformer-encoder`"""
    def __init__(self, num_hiddens, eps=1e-5, by_matmul=True, **kwargs):
        super().__init__(**kwargs)
        self.num_hiddens, self.eps, self.by_matmul = num_hiddens, eps, by_matmul
        self.gamma = self.params.get('gamma', init='ones',
                                     shape=(num_hiddens,))
        self.beta = self.params.get('beta', init='zeros',
                                    shape=(num_hiddens,))

    def hybrid_forward(self, F, X, gamma, beta):
        if self.by_matmul:
            return layer_norm_by_matmul(F, X, gamma, beta, self.eps,
                                        self.num_hiddens)
        return layer_norm(F, X, gamma, beta, self.eps)

class EncoderBlock(nn.HybridBlock):
    """A post-LN Transformer encoder block: self-attention, then an FFN.

    Defined in :numref:`sec_transformer-encoder`"""
    def __init__(self, num_hiddens, ffn_num_hiddens, num_heads, dropout,
                 **kwargs):
        super().__init__(**kwargs)
        self.self_attention = MultiHeadAttention(num_hiddens, num_heads,
                                                 dropout)
        self.norm_attention = LayerNorm(num_hiddens)
        self.ffn = PositionWiseFFN(ffn_num_hiddens, num_hiddens)
        self.norm_ffn = LayerNorm(num_hiddens)
        self.dropout = nn.Dropout(dropout)

    def hybrid_forward(self, F, X, mask):
        # X: (B, T, H); mask: (B, T, T)
        attended = self.self_attention(X, X, X, mask)             # (B, T, H)
        X = self.norm_attention(X + self.dropout(attended))       # (B, T, H)
        return self.norm_ffn(X + self.dropout(self.ffn(X)))       # (B, T, H)

def get_tokens_and_segments(tokens_a, tokens_b=None):
    """Add <cls> and <sep> to one or two token lists; return their segments.

    Defined in :numref:`sec_bert-model`"""
    tokens = ['<cls>', *tokens_a, '<sep>']
    segments = [0] * len(tokens)
    if tokens_b is not None:
        tokens.extend(tokens_b)
        tokens.append('<sep>')
        segments.extend([1] * (len(tokens_b) + 1))
    return tokens, segments

def attention_mask(F, valid_lens, positions):
    """Self-attention mask: each token sees the real tokens of its sequence.

    Defined in :numref:`sec_bert-model`"""
    sequence = F.np.cumsum((positions == 0).astype('int32'), axis=1)  # (B, T)
    same = (F.np.expand_dims(sequence, 2)
            == F.np.expand_dims(sequence, 1)).astype('float32')      # (B, T, T)
    return same * d2l.padding_mask(F, valid_lens, positions)          # (B, T, T)

def check_bert_input(tokens, segments, positions, vocab_size, max_len):
    """Raise ValueError unless tokens, segments, positions are BERT's input.

    Defined in :numref:`sec_bert-model`"""
    checked = [('token', tokens, vocab_size), ('segment', segments, 2)]
    if positions is not None:
        checked.append(('position', positions, max_len))
    if tokens.ndim != 2 or any(x.shape != tokens.shape for _, x, _ in checked):
        names = ' and '.join(f'{name}s' for name, _, _ in checked)
        shapes = ' and '.join(str(x.shape) for _, x, _ in checked)
        raise ValueError(f'{names} must all have shape (batch_size, seq_len), '
                         f'got {shapes}')
    if positions is None and tokens.shape[1] > max_len:
        raise ValueError(f'sequence length {tokens.shape[1]} exceeds '
                         f'max_len={max_len}')
    for name, ids, limit in checked:
        low, high = int(ids.min()), int(ids.max())
        if low < 0 or high >= limit:
            bad = low if low < 0 else high
            raise ValueError(f'{name} id {bad} is outside [0, {limit})')

class BERTEncoder(nn.HybridBlock):
    """BERT's encoder: embeddings of tokens, segments and positions, blocks.

    Defined in :numref:`sec_bert-model`"""
    # max_len: the number of positions that have a learned embedding
    def __init__(self, vocab_size, num_hiddens, ffn_num_hiddens, num_heads,
                 num_layers, dropout, max_len=512):
        super().__init__()
        self.vocab_size, self.max_len = vocab_size, max_len
        self.token_table = nn.Embedding(vocab_size, num_hiddens)
        self.segment_table = nn.Embedding(2, num_hiddens)
        self.position_table = nn.Embedding(max_len, num_hiddens)
        self.embedding_norm = d2l.LayerNorm(num_hiddens)
        self.embedding_dropout = nn.Dropout(dropout)
        self.blocks = nn.HybridSequential()
        self.blocks.add(*[
            d2l.EncoderBlock(num_hiddens, ffn_num_hiddens, num_heads, dropout)
            for _ in range(num_layers)])

    def forward(self, tokens, segments, valid_lens=None, positions=None):
        """Check actual arrays, build the attention mask, run the encoder."""
        F = mx.nd if isinstance(tokens, np.ndarray) else mx.sym
        if F is mx.nd:  # actual arrays, not placeholders in a graph
            check_bert_input(tokens, segments, positions, self.vocab_size,
                             self.max_len)
        if valid_lens is None:  # no padding: count every position
            valid_lens = (tokens >= 0).sum(axis=1)
        if positions is None:  # one sequence per row
            positions = F.np.zeros_like(tokens) + F.npx.arange_like(tokens,
                                                                    axis=1)
        mask = attention_mask(F, valid_lens, positions)       # (B, T, T)
        return super().forward(tokens, segments, positions, mask)

    def hybrid_forward(self, F, tokens, segments, positions, mask):
        # tokens, segments, positions: (B, T); mask: (B, T, T)
        summed = (self.token_table(tokens) + self.segment_table(segments)
                  + self.position_table(positions))           # (B, T, H)
        X = self.embedding_dropout(self.embedding_norm(summed))  # (B, T, H)
        for block in self.blocks:
            X = block(X, mask)                                # (B, T, H)
        return X

def check_positions(name, positions, X, count):
    """Raise ValueError unless positions (B, count) index rows of X (B, T, H).

    Defined in :numref:`sec_bert-model`"""
    batch_size, seq_len = X.shape[:2]
    if positions.ndim != 2 or len(positions) != batch_size:
        raise ValueError(f'{name} must have shape (batch_size={batch_size}, '
                         f'{count}), got {positions.shape}')
    values = positions.asnumpy()
    outside = (values < 0) | (values >= seq_len)
    if outside.any():
        i, j = (int(k[0]) for k in outside.nonzero())
        raise ValueError(f'{name}[{i}, {j}] = {values[i, j]} is outside the '
                         f'sequence of length {seq_len}')

def gather_positions(F, X, positions):
    """Gather X (B, T, H) at each row's positions (B, P), giving (B, P, H).

    Defined in :numref:`sec_bert-model`"""
    example = F.np.expand_dims(F.npx.arange_like(positions, axis=0),
                               axis=1)                        # (B, 1)
    example = F.np.zeros_like(positions) + example            # (B, P)
    where = F.np.stack([example, positions]).astype('int32')  # (2, B, P)
    return F.npx.gather_nd(X, where)  # X[b, positions[b, p]]

class MaskLM(nn.HybridBlock):
    """The masked language model: scores every token at pred_positions.

    Defined in :numref:`sec_bert-model`"""
    def __init__(self, vocab_size, num_hiddens, **kwargs):
        super().__init__(**kwargs)
        self.transform = nn.HybridSequential()
        self.transform.add(nn.Dense(num_hiddens, flatten=False), nn.GELU(),
                           d2l.LayerNorm(num_hiddens))
        self.decoder = nn.Dense(vocab_size, flatten=False)

    def forward(self, X, pred_positions):
        """Check actual pred_positions against X, then run the head."""
        if isinstance(X, np.ndarray):  # not a placeholder in a graph
            check_positions('pred_positions', pred_positions, X, 'num_preds')
        return super().forward(X, pred_positions)

    def hybrid_forward(self, F, X, pred_positions):
        # X: (B, T, H); pred_positions: (B, P)
        picked = gather_positions(F, X, pred_positions)       # (B, P, H)
        return self.decoder(self.transform(picked))           # (B, P, V)

class NextSentencePred(nn.HybridBlock):
    """Next sentence prediction: two scores from each pooled <cls> vector.

    Defined in :numref:`sec_bert-model`"""
    def __init__(self, num_hiddens, **kwargs):
        super().__init__(**kwargs)
        self.pooler = nn.Dense(num_hiddens, activation='tanh', flatten=False)
        self.output = nn.Dense(2, flatten=False)

    def hybrid_forward(self, F, X):
        # X: <cls> vectors (B, H) or (B, C, H) -> scores (B, 2) or (B, C, 2)
        return self.output(self.pooler(X))

class BERTModel(nn.HybridBlock):
    """BERT's encoder with its masked LM and next sentence prediction heads.

    Defined in :numref:`sec_bert-model`"""
    # config keeps these arguments, to build the same network again
    def __init__(self, vocab_size, num_hiddens, ffn_num_hiddens, num_heads,
                 num_layers, dropout, max_len=512):
        super().__init__()
        self.config = {'vocab_size': vocab_size, 'num_hiddens': num_hiddens,
                       'ffn_num_hiddens': ffn_num_hiddens,
                       'num_heads': num_heads, 'num_layers': num_layers,
                       'dropout': dropout, 'max_len': max_len}
        self.encoder = BERTEncoder(**self.config)
        self.mlm = MaskLM(vocab_size, num_hiddens)
        self.nsp = NextSentencePred(num_hiddens)

    def forward(self, tokens, segments, valid_lens=None, pred_positions=None,
                positions=None, cls_positions=None):
        """Return the encoding, the MLM scores (or None) and the NSP scores."""
        encoded_X = self.encoder(tokens, segments, valid_lens,
                                 positions)                     # (B, T, H)
        if cls_positions is None:  # one <cls> per row, at position 0
            cls_X = encoded_X[:, 0]                             # (B, H)
        else:  # packed rows: (B, C, H)
            F = mx.nd if isinstance(tokens, np.ndarray) else mx.sym
            if F is mx.nd:
                check_positions('cls_positions', cls_positions, encoded_X,
                                'pairs per row')
            cls_X = gather_positions(F, encoded_X, cls_positions)
        mlm_Y_hat = (None if pred_positions is None
                     else self.mlm(encoded_X, pred_positions))  # (B, P, V)
        return encoded_X, mlm_Y_hat, self.nsp(cls_X)

SMALL_BERT = {'num_hiddens': 128, 'ffn_num_hiddens': 256, 'num_heads': 2,
              'num_layers': 2, 'dropout': 0.0}

d2l.DATA_HUB['wikitext-2'] = (
    ('https://wikitext.smerity.com/wikitext-2-v1.zip',),
    '3c914d17d80b1459be871a5039ac23e752a53cbe')

WIKITEXT2_SHA1 = {
    'wiki.train.tokens': '863f29c46ef9d167fff4940ec821195882fe29d1',
    'wiki.valid.tokens': '0418625c8b4da6e4b5c7a0b9e78d4ae8f7ee5422',
    'wiki.test.tokens': 'c7b8ce0aa086fb34dab808c5c49224211eb2b172'}

def download_wiki():
    """Download WikiText-2; return the directory of its verified text files.

    Defined in :numref:`sec_bert-dataset`"""
    folder = d2l.download_extract('wikitext-2', 'wikitext-2')
    for name in ('wiki.train.tokens', 'wiki.valid.tokens'):
        if not os.path.isfile(os.path.join(folder, name)):
            raise d2l.DataError(f'{os.path.join(folder, name)} is missing: '
                                f'the wikitext-2 archive must hold '
                                f'wikitext-2/{name}')
    if d2l.hub_overridden('wikitext-2'):
        return folder  # the overriding archive's SHA-1 is the contract
    for name, sha1 in WIKITEXT2_SHA1.items():
        path = os.path.join(folder, name)
        actual = d2l.sha1sum(path) if os.path.exists(path) else sha1
        if actual != sha1:
            raise d2l.DataError(f'{path}: SHA-1 mismatch: expected {sha1} '
                                f'(canonical WikiText-2), got {actual}')
    return folder

def describe_wiki(folder):
    """Say whether folder holds WikiText-2's own splits or a stand-in.

    Defined in :numref:`sec_bert-dataset`"""
    for name in ('wiki.train.tokens', 'wiki.valid.tokens'):
        path = os.path.join(folder, name)
        canonical = d2l.sha1sum(path) == WIKITEXT2_SHA1[name]
        print(f'{name}: ' + ('WikiText-2, canonical' if canonical else
                             'a stand-in, not the canonical file'))

def read_wiki(folder, split='train'):
    """Read wiki.<split>.tokens as paragraphs of lowercase sentences.

    Defined in :numref:`sec_bert-dataset`"""
    path = os.path.join(folder, f'wiki.{split}.tokens')
    try:
        with open(path, encoding='utf-8') as f:
            lines = f.readlines()
    except UnicodeDecodeError as e:
        raise d2l.DataError(f'{path} is not UTF-8 text: {e}') from e
    paragraphs = []
    for line in lines:
        sentences = line.strip().lower().split(' . ')
        if len(sentences) >= 2:
            paragraphs.append(sentences)
    if not paragraphs:
        raise d2l.DataError(f'{path}: no line holds two sentences joined by '
                            '" . "; expected WikiText, one paragraph per line')
    return paragraphs

def get_nsp_pairs(num_sentences):
    """Pair each sentence with its successor or, half the time, another.

    Defined in :numref:`sec_bert-dataset`"""
    num_sentences = onp.asarray(num_sentences)
    ends = onp.cumsum(num_sentences)         # one past each paragraph's last
    starts = ends - num_sentences            # each paragraph's first sentence
    first = onp.setdiff1d(onp.arange(ends[-1]), ends - 1)  # has a successor
    is_next = onp.random.rand(len(first)) < 0.5
    paragraph = onp.random.randint(len(num_sentences), size=len(first))
    random_sentence = (starts[paragraph]
                       + onp.random.randint(num_sentences[paragraph]))
    return first, onp.where(is_next, first + 1, random_sentence), is_next

BERT_RESERVED_TOKENS = ('<cls>', '<sep>', '<mask>', '<pad>')

def index_sentences(sentences, vocab):
    """Concatenate sentence ids, each ended by <sep>; return ids and starts.

    Defined in :numref:`sec_bert-dataset`"""
    ids = vocab[[token for s in sentences for token in [*s, '<sep>']]]
    starts = onp.cumsum([0] + [len(s) + 1 for s in sentences])
    return onp.array(ids, dtype=onp.int32), starts

def pad_pairs(ids, starts, first, second, max_len, vocab):
    """Return tokens, segments and valid_lens of pairs padded to max_len.

    Defined in :numref:`sec_bert-dataset`"""
    pos = onp.arange(max_len)                        # (max_len,)
    sizes = onp.diff(starts)                         # sentence length + <sep>
    end_a = (1 + sizes[first])[:, None]              # (N, 1): b starts here
    valid_lens = end_a + sizes[second][:, None]      # (N, 1)
    # src[i, p]: the entry of ids at position p of pair i (for p >= 1)
    src = onp.where(pos < end_a, starts[first][:, None] + pos - 1,
                    starts[second][:, None] + pos - end_a)   # (N, max_len)
    tokens = onp.where(pos < valid_lens, ids.take(src, mode='clip'),
                       vocab['<pad>']).astype(onp.int32)     # (N, max_len)
    tokens[:, 0] = vocab['<cls>']
    segments = ((pos >= end_a) & (pos < valid_lens)).astype(onp.int32)
    return tokens, segments, valid_lens[:, 0]

def mask_tokens(tokens, valid_lens, vocab):
    """Pick 15% of each row's words to predict and corrupt them 80/10/10.

    Defined in :numref:`sec_bert-dataset`"""
    num_slots = round(0.15 * tokens.shape[1])
    never = onp.isin(tokens, vocab[['<unk>', '<cls>', '<sep>', '<pad>']])
    num_preds = onp.minimum(onp.maximum(1, onp.round(0.15 * valid_lens)),
                            (~never).sum(axis=1))              # (N,)
    in_use = onp.arange(num_slots) < num_preds[:, None]        # (N, slots)
    keys = onp.where(never, 2, onp.random.rand(*tokens.shape))  # (N, max_len)
    pred_positions = onp.where(in_use, keys.argsort(axis=1)[:, :num_slots], 0)
    rows, slots = in_use.nonzero()         # one entry per used slot
    cols = pred_positions[rows, slots]     # its position in the row
    labels = tokens[rows, cols]
    words = onp.setdiff1d(onp.arange(len(vocab)),
                          vocab[['<unk>', *BERT_RESERVED_TOKENS]])
    random_words = words[onp.random.randint(len(words), size=len(rows))]
    u = onp.random.rand(len(rows))
    masked = tokens.copy()
    masked[rows, cols] = onp.where(u < 0.8, vocab['<mask>'],
                                   onp.where(u < 0.9, random_words, labels))
    mlm_labels = onp.zeros(in_use.shape, onp.int32)
    mlm_labels[rows, slots] = labels
    return (masked, pred_positions.astype(onp.int32),
            in_use.astype(onp.float32), mlm_labels)

def wiki_vocab(sentences):
    """The vocabulary of tokenized sentences: the words seen 5 times or more.

    Defined in :numref:`sec_bert-dataset`"""
    vocab = d2l.Vocab(sentences, min_freq=5,
                      reserved_tokens=BERT_RESERVED_TOKENS)
    if len(vocab) <= 1 + len(BERT_RESERVED_TOKENS):
        raise ValueError('no word occurs 5 times or more in the text: '
                         'the vocabulary would hold special tokens only')
    return vocab

class WikiTextDataset(gluon.data.Dataset):
    """Masked language modeling and next sentence prediction examples.

    Defined in :numref:`sec_bert-dataset`"""
    def __init__(self, paragraphs, max_len, vocab=None, progress=True):
        bar = tqdm(total=3, desc='Building BERT examples',
                   disable=not progress)
        sentences = d2l.tokenize([s for p in paragraphs for s in p])
        self.vocab = vocab or wiki_vocab(sentences)
        bar.update()
        self.ids, self.starts = index_sentences(sentences, self.vocab)
        self.num_sentences, self.max_len = [len(p) for p in paragraphs], max_len
        bar.update()
        self.draw()
        bar.update()
        bar.close()

    def draw(self):
        """Draw new sentence pairs and new masks: the examples of an epoch."""
        first, second, is_next = get_nsp_pairs(self.num_sentences)
        sizes = onp.diff(self.starts)
        keep = sizes[first] + sizes[second] + 1 <= self.max_len
        if not keep.any():
            raise ValueError(f'no sentence pair fits max_len={self.max_len}: '
                             f'the shortest has '
                             f'{(sizes[first] + sizes[second] + 1).min()} '
                             'tokens')
        tokens, segments, valid_lens = pad_pairs(
            self.ids, self.starts, first[keep], second[keep], self.max_len,
            self.vocab)
        masked, pred_positions, mlm_weights, mlm_labels = mask_tokens(
            tokens, valid_lens, self.vocab)
        self.arrays = (masked, segments, valid_lens.astype(onp.float32),
                       pred_positions, mlm_weights, mlm_labels,
                       is_next[keep].astype(onp.int32))

    def __getitem__(self, idx):
        return tuple(array[idx] for array in self.arrays)

    def __len__(self):
        return len(self.arrays[0])

def assign_rows(lengths, num_preds, max_len, max_preds):
    """Give each pair a row: longest first, into the fullest row it fits.

    Defined in :numref:`sec_bert-dataset`"""
    slots = onp.maximum(1, num_preds)                  # every pair needs one
    room = onp.full(len(lengths), max_len)             # of row r
    slots_left = onp.full(len(lengths), max_preds)
    rows, num_rows = onp.zeros(len(lengths), onp.int64), 0
    for i in onp.argsort(-lengths, kind='stable'):
        fits = ((room[:num_rows] >= lengths[i])
                & (slots_left[:num_rows] >= slots[i]))
        if fits.any():  # the fullest row with room: the least room left
            r = onp.where(fits, room[:num_rows], max_len + 1).argmin()
        else:
            r, num_rows = num_rows, num_rows + 1
        rows[i] = r
        room[r] -= lengths[i]
        slots_left[r] -= slots[i]
    return rows, num_rows

def pack_examples(arrays, vocab, row_len):
    """Pack padded examples into rows of row_len; add positions, <cls> slots.

    Defined in :numref:`sec_bert-dataset`"""
    (tokens, segments, valid_lens, pred_positions, mlm_weights, mlm_labels,
     nsp_labels) = arrays
    max_len, max_preds = row_len, round(0.15 * row_len)
    lengths = valid_lens.astype(onp.int64)
    num_preds = mlm_weights.sum(axis=1).astype(onp.int64)
    rows, num_rows = assign_rows(lengths, num_preds, max_len, max_preds)
    p_tokens = onp.full((num_rows, max_len), vocab['<pad>'], onp.int32)
    p_segments, p_positions = (onp.zeros((num_rows, max_len), onp.int32)
                               for _ in range(2))
    p_lens = onp.zeros(num_rows, onp.float32)
    p_pred, p_labels, p_nsp, p_cls = (onp.zeros((num_rows, max_preds),
                                                onp.int32) for _ in range(4))
    p_weights, p_nsp_weights = (onp.zeros((num_rows, max_preds), onp.float32)
                                for _ in range(2))
    num_slots, num_cls = onp.zeros(num_rows, int), onp.zeros(num_rows, int)
    for i, r in enumerate(rows):
        o, n = int(p_lens[r]), lengths[i]           # pair i goes to o:o + n
        s, k, c = num_slots[r], num_preds[i], num_cls[r]
        p_tokens[r, o:o + n] = tokens[i, :n]
        p_segments[r, o:o + n] = segments[i, :n]
        p_positions[r, o:o + n] = onp.arange(n)
        p_pred[r, s:s + k] = o + pred_positions[i, :k]
        p_weights[r, s:s + k], p_labels[r, s:s + k] = 1, mlm_labels[i, :k]
        p_cls[r, c], p_nsp[r, c], p_nsp_weights[r, c] = o, nsp_labels[i], 1
        p_lens[r] += n
        num_slots[r], num_cls[r] = s + k, c + 1
    return (p_tokens, p_segments, p_lens, p_pred, p_weights, p_labels, p_nsp,
            p_positions, p_cls, p_nsp_weights)

class WikiTextLoader:
    """Batches of a WikiTextDataset; for training, new draws every epoch."""
    def __init__(self, dataset, batch_size, train, packed=False):
        """Defined in :numref:`sec_bert-dataset`"""
        self.dataset, self.train, self.packed = dataset, train, packed
        max_len = dataset.max_len  # packed: rows of 1.5 max_len (see below)
        self.row_len = 3 * max_len // 2 if packed else max_len
        # fewer, longer rows: about as many positions as batch_size pairs
        self.batch_size = max(1, batch_size * max_len // self.row_len)
        self.num_epochs, self.drawn = 0, None

    def rows(self):
        """The arrays of the dataset's current draw, packed if asked."""
        if self.drawn is not self.dataset.arrays:  # lay out each draw once
            self.drawn = self.dataset.arrays
            self.laid_out = (pack_examples(self.drawn, self.dataset.vocab,
                                           self.row_len)
                             if self.packed else self.drawn)
        return self.laid_out

    def __iter__(self):
        if self.train and self.num_epochs > 0:
            self.dataset.draw()
        self.num_epochs += 1
        arrays = self.rows()
        n = len(arrays[0])
        order = onp.random.permutation(n) if self.train else onp.arange(n)
        for i in range(0, n, self.batch_size):
            rows = order[i:i + self.batch_size]
            yield [np.array(array[rows]) for array in arrays]

    def __len__(self):
        return -(-len(self.rows()[0]) // self.batch_size)

def check_loader_args(batch_size, max_len, packed=False):
    """Raise ValueError unless the loader's arguments are usable.

    Defined in :numref:`sec_bert-dataset`"""
    if not (isinstance(batch_size, int) and batch_size >= 1):
        raise ValueError(f'batch_size must be a positive integer, got '
                         f'{batch_size!r}')
    if not (isinstance(max_len, int) and max_len >= 5):
        raise ValueError(f'max_len must be an integer of at least 5 (<cls>, '
                         f'two words, two <sep>), got {max_len!r}')
    if not isinstance(packed, bool):
        raise ValueError(f'packed must be True or False, got {packed!r}')

def load_data_wiki(batch_size, max_len, split='train', vocab=None,
                   packed=False):
    """Load WikiText-2 for BERT pretraining; return (data_iter, vocab).

    Defined in :numref:`sec_bert-dataset`"""
    check_loader_args(batch_size, max_len, packed)
    paragraphs = read_wiki(download_wiki(), split)
    dataset = WikiTextDataset(paragraphs, max_len, vocab)
    data_iter = WikiTextLoader(dataset, batch_size, split == 'train', packed)
    return data_iter, dataset.vocab

def count_pairs(batch):
    """The number of sentence pairs in a batch, padded or packed.

    Defined in :numref:`sec_bert-dataset`"""
    return len(batch[0]) if len(batch) == 7 else int(batch[9].sum())

PRETRAINING = {'batch_size': 64, 'max_len': 64, 'num_steps': 2000,
               'lr': 2e-3, 'warmup': 0.1, 'packed': True}

class CrossEntropyLoss(gluon.loss.Loss):
    """Softmax cross-entropy of each row of scores, optionally weighted.

    Defined in :numref:`sec_bert-pretraining`"""
    def __init__(self, by_softmax=True, **kwargs):
        super().__init__(weight=None, batch_axis=0, **kwargs)
        self.by_softmax = by_softmax

    def hybrid_forward(self, F, scores, labels, sample_weight=None):
        # scores: (N, C); labels: (N,); sample_weight: (N, 1)
        if self.by_softmax:  # -log p(y), with a fast backward pass on CPUs
            # dtype: MXNet 1.9's oneDNN backward would allocate an (N, C)
            # buffer in every step; the generic kernel writes in place
            # (and gives float32 probabilities for scores of any type)
            probs = F.npx.softmax(scores, dtype='float32')        # (N, C)
            ce = -F.np.log(F.npx.pick(probs, labels) + 1e-30)     # (N,)
        else:                # -log p(y) computed as log_softmax(scores)[y]
            ce = -F.npx.pick(F.npx.log_softmax(scores), labels)   # (N,)
        if sample_weight is not None:
            ce = ce * sample_weight.reshape(-1)                   # (N,)
        return ce

def mlm_nsp_losses(net, loss, vocab_size, tokens, segments, valid_lens,
                   pred_positions, mlm_weights, mlm_labels, nsp_labels):
    """Return BERT's MLM and NSP losses of one batch, as in the equations.

    Defined in :numref:`sec_bert-pretraining`"""
    _, mlm_Y_hat, nsp_Y_hat = net(tokens, segments, valid_lens,
                                  pred_positions)         # (B, P, V), (B, 2)
    mlm_l = loss(mlm_Y_hat.reshape(-1, vocab_size), mlm_labels.reshape(-1),
                 mlm_weights.reshape(-1, 1))              # (B * P,)
    mlm_l = mlm_l.sum() / (mlm_weights.sum() + 1e-8)
    return mlm_l, loss(nsp_Y_hat, nsp_labels).mean()

def small_bert(vocab_size, max_len, devices, **changes):
    """The chapter's small BERT (SMALL_BERT, with changes) on devices.

    Defined in :numref:`sec_bert-pretraining`"""
    net = d2l.BERTModel(vocab_size, max_len=max_len,
                        **{**d2l.SMALL_BERT, **changes})
    net.initialize(init.Xavier(), ctx=devices)
    x = np.zeros((1, 4), dtype='int32', ctx=devices[0])
    net(x, x, np.array([4.0], ctx=devices[0]), x[:, :1])  # infer the shapes
    return net

class PretrainingLoss(gluon.HybridBlock):
    """The sums of BERT's MLM and NSP cross-entropies over one shard.

    Defined in :numref:`sec_bert-pretraining`"""
    def __init__(self, net, loss, vocab_size):
        super().__init__()
        self.net, self.loss, self.vocab_size = net, loss, vocab_size

    def hybrid_forward(self, F, tokens, segments, valid_lens, pred_positions,
                       mlm_weights, mlm_labels, nsp_labels, positions=None,
                       cls_positions=None, nsp_weights=None):
        _, mlm_Y_hat, nsp_Y_hat = self.net(
            tokens, segments, valid_lens, pred_positions, positions,
            cls_positions)                      # (B, P, V), (B, 2) or (B, C, 2)
        mlm_sum = self.loss(mlm_Y_hat.reshape(-1, self.vocab_size),
                            mlm_labels.reshape(-1),
                            mlm_weights.reshape(-1, 1)).sum()
        if nsp_weights is not None:  # packed rows
            nsp_weights = nsp_weights.reshape(-1, 1)
        return mlm_sum, self.loss(nsp_Y_hat.reshape(-1, 2),
                                  nsp_labels.reshape(-1), nsp_weights).sum()

def split_batch(batch, devices):
    """Split a batch across devices; return the shards and their weights.

    Defined in :numref:`sec_bert-pretraining`"""
    num_used = min(len(batch[0]), len(devices))
    if num_used < len(devices):  # idle devices get a copy, weighted 0
        copies = np.zeros(len(devices) - num_used, dtype='int32')
        batch = [np.concatenate([x, x[copies]]) for x in batch]
    parts = [gluon.utils.split_and_load(x, devices, even_split=False)
             for x in batch]   # parts[a][k]: array a of device k's shard
    weights = [1.0] * num_used + [0.0] * (len(devices) - num_used)
    return list(zip(*parts)), weights

def batch_totals(batch):
    """The real prediction slots W and the sentence pairs N of a batch.

    Defined in :numref:`sec_bert-pretraining`"""
    return float(batch[4].asnumpy().sum()), d2l.count_pairs(batch)

def train_step(step_loss, trainer, batch, devices, totals=None):
    """Update the parameters on one batch; return its losses as arrays.

    Defined in :numref:`sec_bert-pretraining`"""
    shards, weights = split_batch(batch, devices)
    num_slots, num_pairs = batch_totals(batch) if totals is None else totals
    with autograd.record():
        sums = [step_loss(*shard) for shard in shards]
        losses = [(w * mlm / (num_slots + 1e-8), w * nsp / num_pairs)
                  for w, (mlm, nsp) in zip(weights, sums)]
        shard_losses = [mlm + nsp for mlm, nsp in losses]
    autograd.backward(shard_losses)
    trainer.step(1)
    return losses

def pretraining_step(net, loss, vocab_size, optimizer='adam', **trainer_args):
    """Return the hybridized PretrainingLoss of net and a trainer of net.

    Defined in :numref:`sec_bert-pretraining`"""
    step_loss = PretrainingLoss(net, loss, vocab_size)
    step_loss.hybridize(static_alloc=True, static_shape=True)
    return step_loss, gluon.Trainer(net.collect_params(), optimizer,
                                    **trainer_args)

def unigram_baselines(train_dataset, held_out_dataset):
    """Held-out MLM cross-entropy and accuracy of guessing by frequency.

    Defined in :numref:`sec_bert-pretraining`"""
    vocab = train_dataset.vocab
    counts = onp.bincount(train_dataset.ids, minlength=len(vocab))
    counts[vocab[['<unk>', *d2l.BERT_RESERVED_TOKENS]]] = 0  # never labels
    probs = counts / counts.sum()
    _, _, _, _, weights, labels, _ = held_out_dataset.arrays
    labels = labels[weights == 1]                  # the real slots' labels
    return -onp.log(probs[labels]).mean(), (labels == probs.argmax()).mean()

def evaluate_bert(net, data_iter, device):
    """Return held-out MLM and NSP cross-entropies and accuracies.

    Defined in :numref:`sec_bert-pretraining`"""
    sums = onp.zeros(6)  # MLM: loss, hits, slots; NSP: loss, hits, pairs
    for batch in data_iter:  # padded (7 arrays) or packed (10)
        batch = [x.as_in_ctx(device) for x in batch]
        (tokens, segments, valid_lens, pred_positions, mlm_weights,
         mlm_labels, nsp_labels), packed = batch[:7], batch[7:]
        positions, cls_positions, nsp_weights = packed or (
            None, None, np.ones(nsp_labels.shape, ctx=device))
        _, mlm_Y_hat, nsp_Y_hat = net(tokens, segments, valid_lens,
                                      pred_positions, positions,
                                      cls_positions)  # (B, P, V), (B, [C,] 2)
        mlm_ce = -npx.pick(npx.log_softmax(mlm_Y_hat), mlm_labels)  # (B, P)
        nsp_ce = -npx.pick(npx.log_softmax(nsp_Y_hat), nsp_labels)  # (B, [C])
        mlm_hits = mlm_Y_hat.argmax(axis=-1).astype('int32') == mlm_labels
        nsp_hits = nsp_Y_hat.argmax(axis=-1).astype('int32') == nsp_labels
        sums += [float((mlm_ce * mlm_weights).sum()),
                 float((mlm_hits * mlm_weights).sum()),
                 float(mlm_weights.sum()), float((nsp_ce * nsp_weights).sum()),
                 float((nsp_hits * nsp_weights).sum()),
                 float(nsp_weights.sum())]
    return {'mlm_ce': sums[0] / sums[2], 'mlm_acc': sums[1] / sums[2],
            'nsp_ce': sums[3] / sums[5], 'nsp_acc': sums[4] / sums[5],
            'num_pairs': int(sums[5])}

def learning_rate(step, num_steps, peak_lr, warmup):
    """The learning rate of step 1, 2, ...: linear warm-up, linear decay.

    Defined in :numref:`sec_bert-pretraining`"""
    num_warmup = max(1, round(warmup * num_steps))
    if step <= num_warmup:
        return peak_lr * step / num_warmup
    return peak_lr * (num_steps + 1 - step) / (num_steps + 1 - num_warmup)

def report_pretraining(losses, num_pairs, seconds, where):
    """Print the mean losses of the last ten steps and the pairs per second.

    Defined in :numref:`sec_bert-pretraining`"""
    mlm_l, nsp_l = onp.mean(losses[-10:], axis=0)
    print(f'MLM loss {mlm_l:.3f}, NSP loss {nsp_l:.3f}')
    if num_pairs:
        print(f'{num_pairs / seconds:.1f} sentence pairs/sec on {where}')

def endless_batches(data_iter, num_steps):
    """Yield num_steps batches, going through the data as often as needed.

    Defined in :numref:`sec_bert-pretraining`"""
    step = 0
    while step < num_steps:
        epoch_start = step
        for batch in data_iter:
            yield batch
            step += 1
            if step == num_steps:
                return
        if step == epoch_start:
            raise ValueError('the data iterator yielded no batch')

def train_bert(train_iter, net, loss, vocab_size, devices, num_steps, lr,
               warmup=0.1, held_out_iter=None):
    """Pretrain BERT on all devices; plot the losses; return held-out scores.

    Defined in :numref:`sec_bert-pretraining`"""
    step_loss, trainer = pretraining_step(net, loss, vocab_size)
    plot = d2l.Animator(xlabel='step', ylabel='loss', xlim=[1, num_steps],
                        legend=['MLM', 'NSP', 'held-out MLM'])
    history, scores, num_pairs = [], [], 0
    for step, batch in enumerate(endless_batches(train_iter, num_steps), 1):
        trainer.set_learning_rate(learning_rate(step, num_steps, lr, warmup))
        losses = train_step(step_loss, trainer, batch, devices)
        history.append([sum(float(x) for x in t) for t in zip(*losses)])
        plot.add(step, history[-1])
        if step == 1:  # the first step also compiles: time the others
            npx.waitall()
            timer = d2l.Timer()
        else:
            num_pairs += d2l.count_pairs(batch)
        if held_out_iter is not None and (step % -(-num_steps // 10) == 0
                                          or step == num_steps):
            timer.stop()
            scores.append((step, evaluate_bert(net, held_out_iter,
                                               devices[0])))
            plot.add(step, [None, None, scores[-1][1]['mlm_ce']])
            timer.start()
    plot.draw()
    npx.waitall()
    timer.stop()
    step_loss.hybridize(False)  # free the graph's static memory
    report_pretraining(history, num_pairs, sum(timer.laps), devices)
    return scores

def num_pretraining_steps():
    """The recipe's number of steps, or $D2L_PRETRAIN_STEPS if it is set.

    Defined in :numref:`sec_bert-pretraining`"""
    value = os.environ.get('D2L_PRETRAIN_STEPS', '')
    if not value:
        return PRETRAINING['num_steps']
    if not value.isdigit() or int(value) < 1:
        raise ValueError(f'D2L_PRETRAIN_STEPS must be a positive integer, '
                         f'got {value!r}')
    return int(value)

def fill_in_masks(net, vocab, example, device, k=3):
    """Print an example's masked tokens and net's top-k guesses per slot.

    Defined in :numref:`sec_bert-pretraining`"""
    tokens, segments, valid_lens, pred_positions, mlm_weights, mlm_labels, _ = [
        np.array(onp.expand_dims(x, 0), ctx=device) for x in example]
    _, mlm_Y_hat, _ = net(tokens, segments, valid_lens, pred_positions)
    n = int(valid_lens[0])
    print(' '.join(vocab.to_tokens(tokens[0, :n].asnumpy().tolist())))
    for j in range(int(mlm_weights.sum())):
        guesses = mlm_Y_hat[0, j].argsort()[::-1][:k].asnumpy().tolist()
        print(f'  position {int(pred_positions[0, j])}: '
              f'{vocab.to_tokens(int(mlm_labels[0, j]))!r}, '
              f'guesses {vocab.to_tokens(guesses)}')

def get_bert_encoding(net, tokens_a, tokens_b=None, *, vocab):
    """Return BERT's encoding of one tokenized sentence or a sentence pair.

    Defined in :numref:`sec_bert-pretraining`"""
    for name, tokens in (('tokens_a', tokens_a), ('tokens_b', tokens_b)):
        if isinstance(tokens, str):
            raise TypeError(f'{name} must be a list of tokens, got the string '
                            f'{tokens!r}; split it first, e.g. with .split()')
    device = next(iter(net.collect_params().values())).list_ctx()[0]
    tokens, segments = d2l.get_tokens_and_segments(tokens_a, tokens_b)
    token_ids = np.array([vocab[tokens]], ctx=device, dtype='int32')
    segments = np.array([segments], ctx=device, dtype='int32')
    valid_lens = np.array([len(tokens)], ctx=device, dtype='float32')
    encoded_X, _, _ = net(token_ids, segments, valid_lens)
    return encoded_X  # (1, number of tokens, num_hiddens)

def save_bert(directory, net, vocab):
    """Save a BERT model's configuration, vocabulary and parameters.

    Defined in :numref:`sec_bert-pretraining`"""
    os.makedirs(directory, exist_ok=True)
    path = os.path.join(directory, 'bert')
    net.save_parameters(path + '.params.tmp')
    with open(path + '.json.tmp', 'w', encoding='utf-8') as f:
        json.dump({'config': net.config, 'vocab': vocab.idx_to_token}, f)
    os.replace(path + '.params.tmp', path + '.params')
    os.replace(path + '.json.tmp', path + '.json')

def load_bert(directory, devices):
    """Load a BERT model saved by save_bert; return (net, vocab).

    Defined in :numref:`sec_bert-pretraining`"""
    path = os.path.join(directory, 'bert.json')
    try:
        with open(path, encoding='utf-8') as f:
            saved = json.load(f)
        tokens, config = saved['vocab'], saved['config']
        net = d2l.BERTModel(**config)
    except (OSError, ValueError, KeyError, TypeError) as e:
        raise ValueError(f'{path}: not a BERT saved by save_bert '
                         f'({type(e).__name__}: {e})') from e
    if tokens[:1] != ['<unk>'] or len(tokens) != config['vocab_size']:
        raise ValueError(f'{path}: the vocabulary has {len(tokens)} tokens '
                         f'but the model {config["vocab_size"]}, or it does '
                         'not start with <unk>')
    net.load_parameters(os.path.join(directory, 'bert.params'), ctx=devices)
    return net, d2l.Vocab(reserved_tokens=tokens[1:])

def pretrained_bert(devices):
    """Load the chapter's pretrained BERT, pretraining it first if needed.

    Defined in :numref:`sec_bert-pretraining`"""
    directory = os.path.join(d2l.data_dir(), 'bert-small')
    if not os.path.isfile(os.path.join(directory, 'bert.json')):
        batch_size, max_len = PRETRAINING['batch_size'], PRETRAINING['max_len']
        train_iter, vocab = d2l.load_data_wiki(batch_size, max_len,
                                               packed=PRETRAINING['packed'])
        net = small_bert(len(vocab), max_len, devices)
        train_bert(train_iter, net, CrossEntropyLoss(), len(vocab), devices,
                   num_pretraining_steps(), PRETRAINING['lr'],
                   PRETRAINING['warmup'])
        save_bert(directory, net, vocab)
    return load_bert(directory, devices)

# This SHA-1 is the one the d2l project registers for this URL; it could not
# be checked against the archive when this section was written (no access).
d2l.DATA_HUB['snli'] = (
    ('https://nlp.stanford.edu/projects/snli/snli_1.0.zip',),
    '9fcde07509c7e87ec61c640c1b2753d9041758e4')

def tokenize_snli(text):
    """Lowercase a sentence; cut it into words and punctuation marks.

    Defined in :numref:`sec_bert-snli`"""
    text = text.lower().replace('``', '"').replace("''", '"')
    return re.findall(r'\w+|[^\w\s]', text)

SNLI_LABELS = ('entailment', 'neutral', 'contradiction')

def read_snli(folder, split):
    """Read snli_1.0_<split>.txt: tokenized premises, hypotheses, label ids.

    Defined in :numref:`sec_bert-snli`"""
    path = os.path.join(folder, f'snli_1.0_{split}.txt')
    try:
        with open(path, encoding='utf-8') as f:
            rows = [line.rstrip('\r\n').split('\t') for line in f]
    except (OSError, UnicodeDecodeError) as e:
        raise d2l.DataError(f'cannot read {path}: {e}') from e
    header = rows[0] if rows else []
    needed = ['gold_label', 'sentence1', 'sentence2']
    if not set(needed) <= set(header):
        raise d2l.DataError(f'{path}: the header row {header} lacks one of '
                            f'the columns {needed}')
    label_at, premise_at, hypothesis_at = (header.index(c) for c in needed)
    premises, hypotheses, labels = [], [], []
    for line, row in enumerate(rows[1:], 2):
        if len(row) != len(header):
            raise d2l.DataError(f'{path}, line {line}: {len(row)} columns, '
                                f'but the header names {len(header)}')
        if row[label_at] == '-':  # the annotators did not agree
            continue
        if row[label_at] not in SNLI_LABELS:
            raise d2l.DataError(f'{path}, line {line}: gold_label '
                                f'{row[label_at]!r} is none of {SNLI_LABELS} '
                                'or "-"')
        premises.append(tokenize_snli(row[premise_at]))
        hypotheses.append(tokenize_snli(row[hypothesis_at]))
        labels.append(SNLI_LABELS.index(row[label_at]))
    if not labels:
        raise d2l.DataError(f'{path}: no pair has a gold label')
    return premises, hypotheses, onp.array(labels, dtype=onp.int32)

def truncate_pair_lengths(len_a, len_b, max_len):
    """Shorten the longer of two sentences first so that a pair fits max_len.

    Defined in :numref:`sec_bert-snli`"""
    room = max_len - 3  # <cls> and two <sep>
    keep_a = onp.minimum(len_a, onp.maximum((room + 1) // 2, room - len_b))
    return keep_a, onp.minimum(len_b, room - keep_a)

def snli_inputs(premises, hypotheses, max_len, vocab):
    """Return tokens, segments and valid_lens of the pairs, cut to max_len.

    Defined in :numref:`sec_bert-snli`"""
    keep_p, keep_h = truncate_pair_lengths(
        onp.array([len(p) for p in premises]),
        onp.array([len(h) for h in hypotheses]), max_len)
    sentences = ([p[:n] for p, n in zip(premises, keep_p)]
                 + [h[:n] for h, n in zip(hypotheses, keep_h)])
    ids, starts = d2l.index_sentences(sentences, vocab)
    pairs = onp.arange(len(premises))
    tokens, segments, valid_lens = d2l.pad_pairs(
        ids, starts, pairs, len(pairs) + pairs, max_len, vocab)
    return tokens, segments, valid_lens.astype(onp.float32)

def load_data_snli(batch_size, max_len, vocab, num_train=None):
    """Load SNLI as BERT inputs; return the train and test data iterators.

    Defined in :numref:`sec_bert-snli`"""
    d2l.check_loader_args(batch_size, max_len)
    folder = d2l.download_extract('snli', 'snli_1.0')
    iters = []
    for split in ('train', 'test'):
        premises, hypotheses, labels = read_snli(folder, split)
        if split == 'train' and num_train is not None:
            keep = onp.random.permutation(len(labels))[:num_train]
            premises = [premises[i] for i in keep]
            hypotheses, labels = [hypotheses[i] for i in keep], labels[keep]
        inputs = snli_inputs(premises, hypotheses, max_len, vocab)
        iters.append(gluon.data.DataLoader(
            gluon.data.ArrayDataset(*inputs, labels), batch_size,
            shuffle=(split == 'train')))
    return iters[0], iters[1]

class BERTClassifier(nn.HybridBlock):
    """A pretrained BERT's encoder and pooler under a new output layer.

    Defined in :numref:`sec_bert-snli`"""
    def __init__(self, bert, num_classes, frozen=False):
        super().__init__()
        self.encoder = bert.encoder
        self.pooler = bert.nsp.pooler
        self.output = nn.Dense(num_classes)
        if frozen:
            self.encoder.collect_params().setattr('grad_req', 'null')

    def hybrid_forward(self, F, tokens, segments, valid_lens):
        X = self.encoder(tokens, segments, valid_lens)  # (B, T, H)
        return self.output(self.pooler(X[:, 0]))       # (B, num_classes)

def train_classifier(net, train_iter, num_steps, lr, devices, warmup=0.1):
    """Train a classifier of BERT inputs; return its last epoch's loss.

    Defined in :numref:`sec_bert-snli`"""
    trainer = gluon.Trainer(net.collect_params(), 'adam')
    cross_entropy = gluon.loss.SoftmaxCELoss()
    plot = d2l.Animator(xlabel='step', ylabel='training loss',
                        xlim=[1, num_steps])
    history, timer = [], d2l.Timer()
    for step, batch in enumerate(d2l.endless_batches(train_iter, num_steps),
                                 1):
        trainer.set_learning_rate(d2l.learning_rate(step, num_steps, lr,
                                                    warmup))
        shards, weights = d2l.split_batch(batch, devices)
        with autograd.record():
            losses = [w * cross_entropy(net(*X), y).sum() / len(batch[0])
                      for w, (*X, y) in zip(weights, shards)]
        autograd.backward(losses)
        trainer.step(1)
        history.append(sum(float(x) for x in losses))
        if step % 10 == 0 or step == num_steps:
            plot.add(step, onp.mean(history[-10:]))
    plot.draw()
    last_epoch = onp.mean(history[-len(train_iter):])
    print(f'last epoch\'s loss {last_epoch:.3f}, {timer.stop():.1f} sec on '
          f'{devices}')
    return last_epoch

def evaluate_classifier(net, data_iter, device):
    """Return the accuracy of a classifier of BERT inputs on data_iter.

    Defined in :numref:`sec_bert-snli`"""
    hits = total = 0
    for batch in data_iter:
        *X, y = [x.as_in_ctx(device) for x in batch]
        hits += float((net(*X).argmax(axis=1).astype('int32') == y).sum())
        total += len(y)
    return hits / total

class BagOfWords(nn.HybridBlock):
    """Logistic regression on counts of the premise's and hypothesis' tokens.

    Defined in :numref:`sec_bert-snli`"""
    def __init__(self, vocab_size, num_classes):
        super().__init__()
        self.vocab_size = vocab_size
        self.weight = nn.Embedding(2 * vocab_size, num_classes)
        self.bias = self.params.get('bias', shape=(num_classes,),
                                    init='zeros')

    def hybrid_forward(self, F, tokens, segments, valid_lens, bias):
        W = self.weight(tokens + self.vocab_size * segments)  # (B, T, C)
        positions = F.npx.arange_like(tokens, axis=1).astype('float32')
        real = F.np.expand_dims(positions, 0) < F.np.expand_dims(valid_lens, 1)
        return (W * F.np.expand_dims(real, -1)).sum(axis=1) + bias  # (B, C)

class SumOverWorkers:
    """Add small arrays over a job's workers through its kvstore."""
    def __init__(self, kv):
        """Defined in :numref:`sec_bert-distributed`"""
        self.kv, self.keys = kv, {}

    def __call__(self, values):
        values = onp.asarray(values, dtype=onp.float64)
        if self.kv is None:  # a single process: nothing to add
            return values
        if values.shape not in self.keys:  # far above the parameters' keys
            self.keys[values.shape] = 10**6 + len(self.keys)
            self.kv.init(self.keys[values.shape], np.zeros(values.shape))
        out = np.array(values, dtype='float32')
        self.kv.pushpull(self.keys[values.shape], out, out=out)
        return out.asnumpy().astype(onp.float64)

class Worker:
    """This process's place in a job: its kvstore, rank and devices."""
    def __init__(self, kvstore=None, gpus=(), cpus=1):
        """Defined in :numref:`sec_bert-distributed`"""
        self.kv = mx.kv.create(kvstore) if kvstore else None
        self.rank, self.num_workers = ((self.kv.rank, self.kv.num_workers)
                                       if self.kv else (0, 1))
        self.devices = ([npx.gpu(i) for i in gpus] if gpus
                        else [npx.cpu(i) for i in range(cpus)])
        self.sum = SumOverWorkers(self.kv)

def worker_share(batch_size, rank, num_workers):
    """The pairs (or rows) of each batch that worker rank of num_workers computes.

    Defined in :numref:`sec_bert-distributed`"""
    return batch_size // num_workers + (rank < batch_size % num_workers)

def worker_batches(shard, vocab, max_len, batch_size, seed, rank,
                   start=(0, 0), packed=False):
    """Yield (epoch, index of the next batch, batch) from a worker's shard.

    Defined in :numref:`sec_bert-distributed`"""
    # each epoch draws new pairs, masks and order from a generator seeded with
    # (seed, rank, epoch), so every position of the stream can be restored
    epoch, index = start
    dataset = d2l.WikiTextDataset(shard, max_len, vocab, progress=False)
    loader = d2l.WikiTextLoader(dataset, batch_size, False, packed)  # layout
    while True:
        onp.random.seed([seed, rank, epoch])
        dataset.draw()
        arrays, size = loader.rows(), loader.batch_size
        order = onp.random.permutation(len(arrays[0]))
        for i in range(index, -(-len(order) // size)):
            rows = order[i * size:(i + 1) * size]
            yield epoch, i + 1, [np.array(a[rows]) for a in arrays]
        epoch, index = epoch + 1, 0

def save_checkpoint(directory, net, trainer, state):
    """Write a checkpoint into directory atomically; return its path.

    Defined in :numref:`sec_bert-distributed`"""
    os.makedirs(directory, exist_ok=True)
    tmp = tempfile.mkdtemp(prefix='.incomplete-', dir=directory)
    net.save_parameters(os.path.join(tmp, 'bert.params'))
    trainer.save_states(os.path.join(tmp, 'trainer.states'))
    with open(os.path.join(tmp, 'state.json'), 'w', encoding='utf-8') as f:
        json.dump(state, f)
    name = f'step-{state["step"]:08d}'
    shutil.rmtree(os.path.join(directory, name), ignore_errors=True)
    os.rename(tmp, os.path.join(directory, name))
    with open(tmp + '.latest', 'w', encoding='utf-8') as f:
        f.write(name)
    os.replace(tmp + '.latest', os.path.join(directory, 'latest'))  # commit
    for old in os.listdir(directory):  # older checkpoints, failed attempts
        if old not in (name, 'latest'):
            path = os.path.join(directory, old)
            shutil.rmtree(path) if os.path.isdir(path) else os.remove(path)
    return os.path.join(directory, name)

def read_checkpoint(directory):
    """Return the path and the state of the newest checkpoint in directory.

    Defined in :numref:`sec_bert-distributed`"""
    try:
        with open(os.path.join(directory, 'latest'), encoding='utf-8') as f:
            path = os.path.join(directory, f.read().strip())
        with open(os.path.join(path, 'state.json'), encoding='utf-8') as f:
            return path, json.load(f)
    except (OSError, ValueError) as e:
        raise ValueError(f'{directory}: no checkpoint written by '
                         f'save_checkpoint ({type(e).__name__}: {e})') from e

def restore_checkpoint(directory, config, net, trainer, devices):
    """Load the newest checkpoint of a run with config; return its state.

    Defined in :numref:`sec_bert-distributed`"""
    path, state = read_checkpoint(directory)
    if state['config'] != config:
        raise ValueError(f'{path}: written by a run with '
                         f'{state["config"]}, not {config}')
    net.load_parameters(os.path.join(path, 'bert.params'), ctx=devices)
    trainer.load_states(os.path.join(path, 'trainer.states'))
    return state

def job_pretraining_step(net, vocab_size, kv, optimizer='adam', lr=1e-3):
    """A worker's pretraining step: its kvstore only adds, the worker updates.

    Defined in :numref:`sec_bert-distributed`"""
    step_loss, trainer = d2l.pretraining_step(
        net, d2l.CrossEntropyLoss(), vocab_size, optimizer,
        optimizer_params={'learning_rate': lr},
        kvstore=kv if kv else 'device', update_on_kvstore=False if kv else None)
    if kv:  # copy worker 0's parameters now, not in the first step
        trainer._init_kvstore()
        trainer._init_params()
    return step_loss, trainer

def dropout_seed(seed, rank, step):
    """The seed of the dropout masks of one worker's step.

    Defined in :numref:`sec_bert-distributed`"""
    return int(onp.random.SeedSequence([seed, rank, step]).generate_state(1)[0])

def pretraining_loop(worker, step_loss, trainer, batches, state, save,
                     checkpoint_every=0, progress=False):
    """Train from the state's step to its last; return the pairs and seconds.

    Defined in :numref:`sec_bert-distributed`"""
    config, losses, num_pairs, timer = state['config'], state['losses'], 0, None
    steps = config['steps']
    bar = tqdm(total=steps, initial=state['step'], desc='pretraining',
               disable=not progress or worker.rank != 0)
    for step in range(state['step'] + 1, steps + 1):
        mx.random.seed(dropout_seed(config['seed'], worker.rank, step))
        *position, batch = next(batches)
        trainer.set_learning_rate(d2l.learning_rate(
            step, steps, config['lr'], config['warmup']))
        totals = worker.sum(d2l.batch_totals(batch))  # W and N of the job
        shares = d2l.train_step(step_loss, trainer, batch, worker.devices,
                                totals)
        losses.append(worker.sum([sum(float(x) for x in share)
                                  for share in zip(*shares)]).tolist())
        bar.update()
        bar.set_postfix(mlm=f'{losses[-1][0]:.3f}', nsp=f'{losses[-1][1]:.3f}')
        if timer is None:  # the first step also compiles; time the others
            npx.waitall()
            timer = d2l.Timer()
        else:
            num_pairs += d2l.count_pairs(batch)
        if step == steps or checkpoint_every and step % checkpoint_every == 0:
            positions = onp.zeros((worker.num_workers, 2))
            positions[worker.rank] = position
            save({'step': step, 'losses': losses, 'config': config,
                  'positions': worker.sum(positions).astype(int).tolist()})
    bar.close()
    npx.waitall()
    return worker.sum([num_pairs])[0], timer.stop() if timer else 0

def pretrain_bert(steps, batch_size, max_len, lr, warmup, seed=0,
                  dropout=0.0, packed=False, gpus=(), cpus=1, kvstore=None,
                  checkpoint_dir=None, checkpoint_every=0, resume=None,
                  save_dir=None, progress=False):
    """Pretrain the chapter's BERT alone or as a job's worker; return all losses.

    Defined in :numref:`sec_bert-distributed`"""
    worker = Worker(kvstore, gpus, cpus)
    rank, num_workers = worker.rank, worker.num_workers
    paragraphs = d2l.read_wiki(d2l.download_wiki())
    vocab = d2l.wiki_vocab(d2l.tokenize([s for p in paragraphs for s in p]))
    config = dict(steps=steps, batch_size=batch_size, max_len=max_len,
                  lr=lr, warmup=warmup, seed=seed, packed=packed,
                  num_workers=num_workers, vocab_size=len(vocab))
    mx.random.seed(seed)
    net = d2l.small_bert(len(vocab), max_len, worker.devices, dropout=dropout)
    step_loss, trainer = job_pretraining_step(net, len(vocab), worker.kv,
                                              'adam', lr)
    state = (restore_checkpoint(resume, config, net, trainer, worker.devices)
             if resume else {'step': 0, 'positions': [[0, 0]] * num_workers,
                             'losses': [], 'config': config})
    # worker r reads paragraphs r, r + n, ... and computes its share of a batch
    batches = worker_batches(paragraphs[rank::num_workers], vocab, max_len,
                             worker_share(batch_size, rank, num_workers),
                             seed, rank, state['positions'][rank], packed)

    def save(state):
        if checkpoint_dir and rank == 0:
            save_checkpoint(checkpoint_dir, net, trainer, state)
    num_pairs, seconds = pretraining_loop(worker, step_loss, trainer, batches,
                                          state, save, checkpoint_every,
                                          progress)
    if rank == 0 and save_dir:
        d2l.save_bert(save_dir, net, vocab)
    if rank == 0 and state['losses']:
        d2l.report_pretraining(state['losses'], num_pairs, seconds,
                               f'{num_workers} worker(s), each on '
                               f'{worker.devices}')
    return state['losses']