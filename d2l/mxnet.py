"""The d2l library for MXNet Gluon, saved from the notebooks of chapter_bert.

Everything below the banner is written by ``d2lbook build lib`` from the
notebook cells marked ``#@save``: edit the notebooks, not this file.
"""

import collections
import hashlib
import io
import json
import math
import os
import random
import re
import shutil
import sys
import tarfile
import tempfile
import time
import urllib.error
import urllib.request
import zipfile

import numpy as onp
from IPython import display, get_ipython
from matplotlib import pyplot as plt
from matplotlib.figure import Figure
from mxnet import autograd, gluon, init, np, npx
from mxnet.gluon import nn

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
            f'chapter\'s small BERT trains on a CPU too). See "Building with '
            f'GPUs" in README.md.')
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
    """Record the duration of several intervals."""
    def __init__(self):
        """Defined in :numref:`sec_tools`"""
        self.times = []
        self.start()

    def start(self):
        """Start a new interval."""
        self.tik = time.time()

    def stop(self):
        """End the interval and return its length in seconds."""
        self.times.append(time.time() - self.tik)
        return self.times[-1]

    def avg(self):
        """Return the mean interval length."""
        return sum(self.times) / len(self.times)

    def sum(self):
        """Return the total of all intervals."""
        return sum(self.times)

    def cumsum(self):
        """Return the running totals of the intervals."""
        return onp.cumsum(self.times).tolist()

class Accumulator:
    """Keep running sums of n quantities."""
    def __init__(self, n):
        """Defined in :numref:`sec_tools`"""
        self.data = [0.0] * n

    def add(self, *args):
        """Add one value to each of the n sums."""
        self.data = [a + float(b) for a, b in zip(self.data, args)]

    def reset(self):
        """Set every sum back to zero."""
        self.data = [0.0] * len(self.data)

    def __getitem__(self, idx):
        return self.data[idx]

class Animator:
    """Plot curves point by point, redrawing one figure in place."""
    def __init__(self, xlabel=None, ylabel=None, legend=(), xlim=None,
                 ylim=None, xscale='linear', yscale='linear',
                 fmts=('-', 'm--', 'g-.', 'r:'), figsize=(3.5, 2.5)):
        """Defined in :numref:`sec_tools`"""
        self.fig = Figure(figsize=figsize)
        self.axes = self.fig.add_subplot()
        self.config = dict(xlabel=xlabel, ylabel=ylabel, xlim=xlim,
                           ylim=ylim, xscale=xscale, yscale=yscale)
        self.legend, self.fmts = list(legend), fmts
        self.X, self.Y, self.handle = None, None, None

    def add(self, x, y):
        """Append one point to each curve and redraw."""
        ys = list(y) if hasattr(y, '__len__') else [y]
        if self.X is None:
            self.X, self.Y = [[] for _ in ys], [[] for _ in ys]
        for i, value in enumerate(ys):
            if value is not None:
                self.X[i].append(x)
                self.Y[i].append(float(value))
        self.draw()

    def draw(self):
        """Redraw every curve and refresh the figure shown in Jupyter."""
        self.axes.cla()
        for xs, ys, fmt in zip(self.X, self.Y, self.fmts):
            self.axes.plot(xs, ys, fmt)
        self.axes.set(**self.config)
        if self.legend:
            self.axes.legend(self.legend)
        self.axes.grid()
        self.fig.tight_layout()
        if get_ipython() is None:
            return
        svg = io.StringIO()
        self.fig.savefig(svg, format='svg')
        if self.handle is None:
            self.handle = display.display(display.SVG(svg.getvalue()),
                                          display_id=True)
        else:
            self.handle.update(display.SVG(svg.getvalue()))

def tokenize(lines, token='word'):
    """Split each line into word or character tokens.

    Defined in :numref:`sec_tools`"""
    if token == 'word':
        return [line.split() for line in lines]
    if token == 'char':
        return [list(line) for line in lines]
    raise ValueError(f"unknown token type {token!r}: expected 'word' or "
                     "'char'")

class Vocab:
    """Map tokens to indices and back; index 0 is the unknown token."""
    def __init__(self, tokens=(), min_freq=0, reserved_tokens=()):
        """Count tokens; index those seen at least min_freq times.

        Defined in :numref:`sec_tools`"""
        if tokens and not isinstance(tokens[0], str):
            tokens = [token for line in tokens for token in line]
        counts = collections.Counter(tokens)
        # sorted() is stable: equally frequent tokens keep first-seen order
        self.token_freqs = sorted(counts.items(), key=lambda kv: kv[1],
                                  reverse=True)
        self.idx_to_token = ['<unk>'] + list(reserved_tokens)
        known = set(self.idx_to_token)
        self.idx_to_token += [token for token, freq in self.token_freqs
                              if freq >= min_freq and token not in known]
        self.token_to_idx = {token: idx
                             for idx, token in enumerate(self.idx_to_token)}

    def __len__(self):
        return len(self.idx_to_token)

    def __getitem__(self, tokens):
        """Return the index of a token, or the indices of a list of tokens."""
        if isinstance(tokens, (list, tuple)):
            return [self.token_to_idx.get(token, 0) for token in tokens]
        return self.token_to_idx.get(tokens, 0)

    def to_tokens(self, indices):
        """Return the token of an index, or the tokens of a list of indices."""
        if isinstance(indices, (list, tuple)):
            return [self.idx_to_token[int(i)] for i in indices]
        return self.idx_to_token[int(indices)]

    @property
    def unk(self):
        """Index of the unknown token."""
        return 0

DATA_HUB = dict()

class DataError(RuntimeError):
    """A dataset could not be downloaded, verified or read.

    Defined in :numref:`sec_tools`"""

def sha1sum(path):
    """Return the hex SHA-1 digest of a file.

    Defined in :numref:`sec_tools`"""
    digest = hashlib.sha1()
    with open(path, 'rb') as f:
        for chunk in iter(lambda: f.read(1 << 20), b''):
            digest.update(chunk)
    return digest.hexdigest()

def _hub_override(name):
    """Return the D2L_DATA_HUB entry for a dataset, or None.

    Defined in :numref:`sec_tools`"""
    path = os.environ.get('D2L_DATA_HUB')
    if not path:
        return None
    try:
        with open(path, encoding='utf-8') as f:
            hub = json.load(f)
    except (OSError, ValueError) as e:
        raise DataError(f'cannot read the D2L_DATA_HUB file {path}: {e}')
    entry = hub.get(name)
    if entry is not None and not (isinstance(entry, list) and len(entry) == 2):
        raise DataError(f'{path}: the entry for {name!r} should be '
                        f'["url", "sha1"], got {entry!r}')
    return entry

def hub_overridden(name):
    """Return whether D2L_DATA_HUB overrides a dataset's entry.

    Defined in :numref:`sec_tools`"""
    return _hub_override(name) is not None

def hub_entry(name):
    """Return (mirror URLs, SHA-1) of a dataset, honoring D2L_DATA_HUB.

    Defined in :numref:`sec_tools`"""
    entry = _hub_override(name) or DATA_HUB.get(name)
    if entry is None:
        raise DataError(f'unknown dataset {name!r}: it is neither in '
                        'd2l.DATA_HUB nor in the D2L_DATA_HUB file')
    urls, sha1 = entry
    return ((urls,) if isinstance(urls, str) else tuple(urls)), sha1

def data_dir():
    """Return the cache directory: $D2L_DATA_DIR, or ../data.

    Defined in :numref:`sec_tools`"""
    return os.environ.get('D2L_DATA_DIR', os.path.join('..', 'data'))

USER_AGENT = ('Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 '
              '(KHTML, like Gecko) Chrome/120.0 Safari/537.36')

def _fetch(url, fname, sha1):
    """Download url to fname atomically, only if its SHA-1 matches.

    Defined in :numref:`sec_tools`"""
    request = urllib.request.Request(url, headers={'User-Agent': USER_AGENT})
    tmp = None
    try:
        with urllib.request.urlopen(request, timeout=60) as response, \
                tempfile.NamedTemporaryFile(
                    dir=os.path.dirname(fname) or '.', prefix='.partial-',
                    delete=False) as f:
            tmp, digest = f.name, hashlib.sha1()
            for chunk in iter(lambda: response.read(1 << 20), b''):
                digest.update(chunk)
                f.write(chunk)
        if digest.hexdigest() != sha1:
            raise DataError(f'SHA-1 mismatch: expected {sha1}, got '
                            f'{digest.hexdigest()}')
        os.replace(tmp, fname)
    finally:
        if tmp and os.path.exists(tmp):
            os.remove(tmp)

def download(name, cache_dir=None):
    """Download a DATA_HUB file into the cache, verify it, return its path.

    Defined in :numref:`sec_tools`"""
    urls, sha1 = hub_entry(name)
    cache_dir = cache_dir or data_dir()
    os.makedirs(cache_dir, exist_ok=True)
    fname = os.path.join(cache_dir, urls[0].rstrip('/').split('/')[-1])
    if os.path.exists(fname):
        if sha1sum(fname) == sha1:
            return fname
        os.remove(fname)
    failures = []
    for url in urls:
        print(f'Downloading {fname} from {url}...')
        try:
            _fetch(url, fname, sha1)
            return fname
        except (OSError, DataError) as e:  # network errors are OSErrors
            failures.append(f'\n  {url}: {e}')
    raise DataError(f'cannot download dataset {name!r} (expected SHA-1 '
                    f'{sha1}) from any mirror:{"".join(failures)}')

def _extract(fname, target, sha1):
    """Extract an archive into target atomically, unless already done.

    Defined in :numref:`sec_tools`"""
    stamp = os.path.join(target, '.sha1')
    if os.path.exists(stamp):
        with open(stamp, encoding='utf-8') as f:
            if f.read() == sha1:
                return
    tmp = tempfile.mkdtemp(dir=os.path.dirname(target), prefix='.partial-')
    try:
        if fname.endswith('.zip'):
            with zipfile.ZipFile(fname) as archive:
                archive.extractall(tmp)
        else:
            with tarfile.open(fname) as archive:
                archive.extractall(tmp, filter='data')
        with open(os.path.join(tmp, '.sha1'), 'w', encoding='utf-8') as f:
            f.write(sha1)
        shutil.rmtree(target, ignore_errors=True)
        os.replace(tmp, target)
    except Exception as e:
        os.remove(fname)
        raise DataError(f'cannot extract the archive {fname}: '
                        f'{type(e).__name__}: {e}') from e
    finally:
        shutil.rmtree(tmp, ignore_errors=True)

def download_extract(name, folder=None):
    """Download and extract a zip/tar archive; return its directory.

    Defined in :numref:`sec_tools`"""
    fname = download(name)
    match = re.fullmatch(r'(.+)\.(zip|tar|tar\.gz|tgz)', fname)
    if match is None:
        raise DataError(f'{fname}: only .zip, .tar, .tar.gz and .tgz '
                        'archives can be extracted')
    target = match.group(1)
    _extract(fname, target, hub_entry(name)[1])
    return os.path.join(target, folder) if folder else target

def masked_softmax(F, X, valid_lens):
    """Softmax over the last axis of X that gives padded keys zero weight.

    Defined in :numref:`sec_transformer-encoder`"""
    # X: (batch_size, num_queries, num_keys); valid_lens: (batch_size,)
    key_positions = F.np.zeros_like(X) + F.npx.arange_like(X, axis=-1)
    padded = key_positions >= F.np.reshape(valid_lens.astype('float32'),
                                           (-1, 1, 1))
    return F.npx.softmax(X - 1e6 * padded.astype('float32'))

class DotProductAttention(nn.HybridBlock):
    """Scaled dot-product attention with dropout on the attention weights.

    Defined in :numref:`sec_transformer-encoder`"""
    def __init__(self, key_size, dropout, **kwargs):
        super().__init__(**kwargs)
        self.scale = 1 / math.sqrt(key_size)
        self.dropout = nn.Dropout(dropout)

    def hybrid_forward(self, F, queries, keys, values, valid_lens):
        # queries: (batch_size, num_queries, key_size);
        # keys: (batch_size, num_keys, key_size);
        # values: (batch_size, num_keys, value_size)
        scores = F.npx.batch_dot(queries * self.scale, keys, transpose_b=True)
        weights = masked_softmax(F, scores, valid_lens)
        return F.npx.batch_dot(self.dropout(weights), values)

class AttentionHead(nn.HybridBlock):
    """One attention head, with its own projections of its three inputs.

    Defined in :numref:`sec_transformer-encoder`"""
    def __init__(self, head_size, dropout, **kwargs):
        super().__init__(**kwargs)
        self.W_q = nn.Dense(head_size, flatten=False)
        self.W_k = nn.Dense(head_size, flatten=False)
        self.W_v = nn.Dense(head_size, flatten=False)
        self.attention = DotProductAttention(head_size, dropout)

    def hybrid_forward(self, F, queries, keys, values, valid_lens):
        return self.attention(self.W_q(queries), self.W_k(keys),
                              self.W_v(values), valid_lens)

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

    def hybrid_forward(self, F, queries, keys, values, valid_lens):
        outputs = [head(queries, keys, values, valid_lens)
                   for head in self.heads]
        return self.W_o(F.np.concatenate(outputs, axis=-1))

class PositionWiseFFN(nn.HybridBlock):
    """The same two-layer network, applied at every position.

    Defined in :numref:`sec_transformer-encoder`"""
    def __init__(self, ffn_num_hiddens, num_hiddens, **kwargs):
        super().__init__(**kwargs)
        self.dense1 = nn.Dense(ffn_num_hiddens, flatten=False)
        self.gelu = nn.GELU()
        self.dense2 = nn.Dense(num_hiddens, flatten=False)

    def hybrid_forward(self, F, X):
        return self.dense2(self.gelu(self.dense1(X)))

class LayerNorm(nn.HybridBlock):
    """Layer normalization over the last axis, with sums as matrix products.

    Defined in :numref:`sec_transformer-encoder`"""
    def __init__(self, num_hiddens, eps=1e-5, **kwargs):
        super().__init__(**kwargs)
        self.num_hiddens, self.eps = num_hiddens, eps
        self.gamma = self.params.get('gamma', shape=(num_hiddens, 1),
                                     init=init.One())
        self.beta = self.params.get('beta', shape=(num_hiddens, 1),
                                    init=init.Zero())

    def hybrid_forward(self, F, X, gamma, beta):
        n = self.num_hiddens
        def times(A, W, num_outputs):  # A @ W.T over the last axis of A
            return F.npx.fully_connected(A, W, no_bias=True, flatten=False,
                                         num_hidden=num_outputs)
        average = F.np.full((1, n), 1 / n)  # times(X, average, 1): row means
        spread = F.np.ones((n, 1))  # times(c, spread, n): column c, n times
        X = X - times(times(X, average, 1), spread, n)
        var = times(X * X, average, 1)
        # Outer products: 1 / std with gamma, and a column of ones with beta
        scale = times(1 / F.np.sqrt(var + self.eps), gamma, n)
        return X * scale + times(F.np.ones_like(var), beta, n)

class AddNorm(nn.HybridBlock):
    """Residual connection followed by layer normalization.

    Defined in :numref:`sec_transformer-encoder`"""
    def __init__(self, num_hiddens, dropout, **kwargs):
        super().__init__(**kwargs)
        self.dropout = nn.Dropout(dropout)
        self.ln = LayerNorm(num_hiddens)

    def hybrid_forward(self, F, X, Y):
        return self.ln(X + self.dropout(Y))

class EncoderBlock(nn.HybridBlock):
    """Transformer encoder block: self-attention, then a feed-forward net.

    Defined in :numref:`sec_transformer-encoder`"""
    def __init__(self, num_hiddens, ffn_num_hiddens, num_heads, dropout,
                 **kwargs):
        super().__init__(**kwargs)
        self.attention = MultiHeadAttention(num_hiddens, num_heads, dropout)
        self.addnorm1 = AddNorm(num_hiddens, dropout)
        self.ffn = PositionWiseFFN(ffn_num_hiddens, num_hiddens)
        self.addnorm2 = AddNorm(num_hiddens, dropout)

    def hybrid_forward(self, F, X, valid_lens):
        Y = self.addnorm1(X, self.attention(X, X, X, valid_lens))
        return self.addnorm2(Y, self.ffn(Y))

def get_tokens_and_segments(tokens_a, tokens_b=None):
    """Add <cls> and <sep> to one or two token lists; return their segments.

    Defined in :numref:`sec_bert-model`"""
    tokens = ['<cls>', *tokens_a, '<sep>']
    segments = [0] * len(tokens)
    if tokens_b is not None:
        tokens += [*tokens_b, '<sep>']
        segments += [1] * (len(tokens_b) + 1)
    return tokens, segments

class BERTEncoder(nn.HybridBlock):
    """BERT's encoder: the sum of three embeddings, then encoder blocks.

    Defined in :numref:`sec_bert-model`"""
    def __init__(self, vocab_size, num_hiddens, ffn_num_hiddens, num_heads,
                 num_layers, dropout, max_len=1000, **kwargs):
        super().__init__(**kwargs)
        self.max_len = max_len
        self.token_embedding = nn.Embedding(vocab_size, num_hiddens)
        self.segment_embedding = nn.Embedding(2, num_hiddens)
        self.pos_embedding = nn.Embedding(max_len, num_hiddens)
        self.blks = nn.HybridSequential()
        for _ in range(num_layers):
            self.blks.add(d2l.EncoderBlock(num_hiddens, ffn_num_hiddens,
                                           num_heads, dropout))

    def forward(self, tokens, segments, valid_lens=None):
        """Check the shapes of actual arrays, then run the encoder."""
        if isinstance(tokens, np.ndarray):  # not a placeholder in a graph
            if tokens.ndim != 2 or segments.shape != tokens.shape:
                raise ValueError(f'tokens and segments must both have shape '
                                 f'(batch_size, seq_len), got {tokens.shape} '
                                 f'and {segments.shape}')
            if tokens.shape[1] > self.max_len:
                raise ValueError(f'sequence length {tokens.shape[1]} exceeds '
                                 f'max_len={self.max_len}')
        if valid_lens is None:  # no padding: count every position
            valid_lens = (tokens >= 0).sum(axis=1)
        return super().forward(tokens, segments, valid_lens)

    def hybrid_forward(self, F, tokens, segments, valid_lens):
        positions = F.np.zeros_like(tokens) + F.npx.arange_like(tokens, axis=1)
        X = (self.token_embedding(tokens) + self.segment_embedding(segments)
             + self.pos_embedding(positions))
        for blk in self.blks:
            X = blk(X, valid_lens)
        return X

class MaskLM(nn.HybridBlock):
    """The masked language model head: scores tokens at pred_positions.

    Defined in :numref:`sec_bert-model`"""
    def __init__(self, vocab_size, num_hiddens, **kwargs):
        super().__init__(**kwargs)
        self.mlp = nn.HybridSequential()
        self.mlp.add(nn.Dense(num_hiddens, flatten=False), nn.GELU(),
                     d2l.LayerNorm(num_hiddens),
                     nn.Dense(vocab_size, flatten=False))

    def forward(self, X, pred_positions):
        """Check actual pred_positions against X, then run the head."""
        if isinstance(X, np.ndarray):  # not a placeholder in a graph
            batch_size, seq_len = X.shape[:2]
            if pred_positions.ndim != 2 or len(pred_positions) != batch_size:
                raise ValueError(f'pred_positions must have shape (batch_size='
                                 f'{batch_size}, num_preds), got '
                                 f'{pred_positions.shape}')
            positions = pred_positions.asnumpy()
            outside = (positions < 0) | (positions >= seq_len)
            if outside.any():
                i, j = (int(k[0]) for k in outside.nonzero())
                raise ValueError(f'pred_positions[{i}, {j}] = '
                                 f'{positions[i, j]} is outside the '
                                 f'sequence of length {seq_len}')
        return super().forward(X, pred_positions)

    def hybrid_forward(self, F, X, pred_positions):
        batch_idx = F.np.zeros_like(pred_positions) + F.np.expand_dims(
            F.npx.arange_like(pred_positions, axis=0), -1)
        indices = F.np.stack([batch_idx, pred_positions]).astype('int32')
        return self.mlp(F.npx.gather_nd(X, indices))

class NextSentencePred(nn.HybridBlock):
    """The next sentence prediction head: classifies the <cls> vector.

    Defined in :numref:`sec_bert-model`"""
    def __init__(self, num_hiddens, **kwargs):
        super().__init__(**kwargs)
        self.pooler = nn.Dense(num_hiddens, activation='tanh')
        self.output = nn.Dense(2)

    def hybrid_forward(self, F, X):
        return self.output(self.pooler(X[:, 0]))

class BERTModel(nn.HybridBlock):
    """BERT: the encoder with its masked language model and NSP heads.

    Defined in :numref:`sec_bert-model`"""
    def __init__(self, vocab_size, num_hiddens, ffn_num_hiddens, num_heads,
                 num_layers, dropout, max_len=1000, **kwargs):
        super().__init__(**kwargs)
        self.config = dict(vocab_size=vocab_size, num_hiddens=num_hiddens,
                           ffn_num_hiddens=ffn_num_hiddens,
                           num_heads=num_heads, num_layers=num_layers,
                           dropout=dropout, max_len=max_len)
        self.encoder = BERTEncoder(**self.config)
        self.mlm = MaskLM(vocab_size, num_hiddens)
        self.nsp = NextSentencePred(num_hiddens)

    def forward(self, tokens, segments, valid_lens=None, pred_positions=None):
        """Return the encoding, the MLM scores (or None) and the NSP scores."""
        encoded_X = self.encoder(tokens, segments, valid_lens)
        mlm_Y_hat = (None if pred_positions is None
                     else self.mlm(encoded_X, pred_positions))
        return encoded_X, mlm_Y_hat, self.nsp(encoded_X)

d2l.DATA_HUB['wikitext-2'] = (
    ('https://wikitext.smerity.com/wikitext-2-v1.zip',),
    '3c914d17d80b1459be871a5039ac23e752a53cbe')

WIKITEXT2_SHA1 = {
    'wiki.train.tokens': '863f29c46ef9d167fff4940ec821195882fe29d1',
    'wiki.valid.tokens': '0418625c8b4da6e4b5c7a0b9e78d4ae8f7ee5422',
    'wiki.test.tokens': 'c7b8ce0aa086fb34dab808c5c49224211eb2b172'}

def _download_wiki():
    """Download WikiText-2; return the directory of its verified text files.

    Defined in :numref:`sec_bert-dataset`"""
    data_dir = d2l.download_extract('wikitext-2', 'wikitext-2')
    train = os.path.join(data_dir, 'wiki.train.tokens')
    if not os.path.isfile(train):
        raise d2l.DataError(f'{train} is missing: the wikitext-2 archive '
                            'must hold wikitext-2/wiki.train.tokens')
    if d2l.hub_overridden('wikitext-2'):
        return data_dir  # the overriding archive's SHA-1 is the contract
    for name, sha1 in WIKITEXT2_SHA1.items():
        path = os.path.join(data_dir, name)
        actual = d2l.sha1sum(path) if os.path.exists(path) else sha1
        if actual != sha1:
            raise d2l.DataError(f'{path}: SHA-1 mismatch: expected {sha1} '
                                f'(canonical WikiText-2), got {actual}')
    return data_dir

def _read_wiki(data_dir):
    """Read wiki.train.tokens as paragraphs of lowercase sentences.

    Defined in :numref:`sec_bert-dataset`"""
    path = os.path.join(data_dir, 'wiki.train.tokens')
    try:
        with open(path, encoding='utf-8') as f:
            lines = f.readlines()
    except UnicodeDecodeError as e:
        raise d2l.DataError(f'{path} is not UTF-8 text: {e}') from e
    paragraphs = [line.strip().lower().split(' . ') for line in lines]
    paragraphs = [p for p in paragraphs if len(p) >= 2]
    if not paragraphs:
        raise d2l.DataError(f'{path}: no line holds two sentences joined by '
                            '" . "; expected WikiText, one paragraph per line')
    return paragraphs

def _get_nsp_pairs(num_sentences):
    """Pair each sentence with its successor or, half the time, another.

    Defined in :numref:`sec_bert-dataset`"""
    num_sentences = onp.asarray(num_sentences)
    ends = onp.cumsum(num_sentences)
    starts = ends - num_sentences
    first = onp.setdiff1d(onp.arange(ends[-1]), ends - 1)  # has a successor
    is_next = onp.random.rand(len(first)) < 0.5
    paragraph = onp.random.randint(len(num_sentences), size=len(first))
    random_sentence = (starts[paragraph]
                       + onp.random.randint(num_sentences[paragraph]))
    return first, onp.where(is_next, first + 1, random_sentence), is_next

def _index_sentences(sentences, vocab):
    """Concatenate sentence ids, each ended by <sep>; return ids and starts.

    Defined in :numref:`sec_bert-dataset`"""
    ids = vocab[[token for s in sentences for token in s + ['<sep>']]]
    starts = onp.cumsum([0] + [len(s) + 1 for s in sentences])
    return onp.array(ids, dtype=onp.int32), starts

def _pack_pairs(ids, starts, first, second, max_len, vocab):
    """Return tokens, segments and valid_lens of pairs padded to max_len.

    Defined in :numref:`sec_bert-dataset`"""
    pos = onp.arange(max_len)
    sizes = onp.diff(starts)  # sentence lengths, plus one for <sep>
    end_a = (1 + sizes[first])[:, None]
    valid_lens = end_a + sizes[second][:, None]
    src = onp.where(pos < end_a, starts[first][:, None] + pos - 1,
                    starts[second][:, None] + pos - end_a)
    tokens = onp.where(pos < valid_lens, ids.take(src, mode='clip'),
                       vocab['<pad>']).astype(onp.int32)
    tokens[:, 0] = vocab['<cls>']
    segments = ((pos >= end_a) & (pos < valid_lens)).astype(onp.int32)
    return tokens, segments, valid_lens[:, 0]

def _mask_tokens(tokens, valid_lens, vocab):
    """Pick 15% of each row's words to predict and corrupt them 80/10/10.

    Defined in :numref:`sec_bert-dataset`"""
    num_slots = round(0.15 * tokens.shape[1])
    num_preds = onp.maximum(1, onp.round(0.15 * valid_lens))
    in_use = onp.arange(num_slots) < num_preds[:, None]
    keys = onp.random.rand(*tokens.shape)
    keys[onp.isin(tokens, vocab[['<cls>', '<sep>', '<pad>']])] = 2
    pred_positions = onp.where(in_use, keys.argsort(axis=1)[:, :num_slots], 0)
    rows, slots = in_use.nonzero()
    cols = pred_positions[rows, slots]
    labels = tokens[rows, cols]
    words = onp.setdiff1d(onp.arange(len(vocab)), vocab[
        ['<unk>', '<pad>', '<mask>', '<cls>', '<sep>']])
    random_words = words[onp.random.randint(len(words), size=len(rows))]
    u = onp.random.rand(len(rows))
    masked = tokens.copy()
    masked[rows, cols] = onp.where(u < 0.8, vocab['<mask>'],
                                   onp.where(u < 0.9, random_words, labels))
    mlm_labels = onp.zeros(in_use.shape, onp.int32)
    mlm_labels[rows, slots] = labels
    return (masked, pred_positions.astype(onp.int32),
            in_use.astype(onp.float32), mlm_labels)

class _WikiTextDataset(gluon.data.Dataset):
    """Masked language modeling and next sentence prediction examples.

    Defined in :numref:`sec_bert-dataset`"""
    def __init__(self, paragraphs, max_len):
        sentences = d2l.tokenize([s for p in paragraphs for s in p])
        self.vocab = d2l.Vocab(sentences, min_freq=5, reserved_tokens=[
            '<pad>', '<mask>', '<cls>', '<sep>'])
        ids, starts = _index_sentences(sentences, self.vocab)
        first, second, is_next = _get_nsp_pairs([len(p) for p in paragraphs])
        sizes = onp.diff(starts)
        pair_lens = sizes[first] + sizes[second] + 1
        keep = pair_lens <= max_len
        if not keep.any():
            raise ValueError(f'no sentence pair fits max_len={max_len}: the '
                             f'shortest has {pair_lens.min()} tokens')
        tokens, segments, valid_lens = _pack_pairs(
            ids, starts, first[keep], second[keep], max_len, self.vocab)
        masked, pred_positions, mlm_weights, mlm_labels = _mask_tokens(
            tokens, valid_lens, self.vocab)
        valid_lens = valid_lens.astype(onp.float32)
        nsp_labels = is_next[keep].astype(onp.int32)
        self.arrays = (masked, segments, valid_lens, pred_positions,
                       mlm_weights, mlm_labels, nsp_labels)

    def __getitem__(self, idx):
        return tuple(array[idx] for array in self.arrays)

    def __len__(self):
        return len(self.arrays[0])

def load_data_wiki(batch_size, max_len):
    """Load WikiText-2 for BERT pretraining; return (train_iter, vocab).

    Defined in :numref:`sec_bert-dataset`"""
    train_set = _WikiTextDataset(_read_wiki(_download_wiki()), max_len)
    train_iter = gluon.data.DataLoader(train_set, batch_size, shuffle=True)
    return train_iter, train_set.vocab

class _PretrainingLoss(nn.HybridBlock):
    """Sum BERT's MLM and NSP cross-entropies over one shard of a batch.

    Defined in :numref:`sec_bert-pretraining`"""
    def __init__(self, net, loss, vocab_size, **kwargs):
        super().__init__(**kwargs)
        self.net, self.loss, self.vocab_size = net, loss, vocab_size

    def hybrid_forward(self, F, tokens, segments, valid_lens, pred_positions,
                       mlm_weights, mlm_labels, nsp_labels):
        _, mlm_Y_hat, nsp_Y_hat = self.net(tokens, segments, valid_lens,
                                           pred_positions)
        mlm_l = self.loss(mlm_Y_hat.reshape((-1, self.vocab_size)),
                          mlm_labels.reshape(-1), mlm_weights.reshape((-1, 1)))
        return mlm_l.sum(), self.loss(nsp_Y_hat, nsp_labels).sum()

def _split_batch(batch, devices):
    """Split a batch across devices; return the shards and their weights.

    Defined in :numref:`sec_bert-pretraining`"""
    num_used = min(len(batch[0]), len(devices))
    if num_used < len(devices):  # idle devices get a copy, weighted 0
        copies = np.array([0] * (len(devices) - num_used), dtype='int32')
        batch = [np.concatenate([x, x[copies]]) for x in batch]
    parts = [gluon.utils.split_and_load(x, devices, even_split=False)
             for x in batch]
    weights = [1.0] * num_used + [0.0] * (len(devices) - num_used)
    return list(zip(*parts)), weights

def _train_step(step_loss, trainer, batch, devices):
    """Update the parameters on one batch; return its losses as arrays.

    Defined in :numref:`sec_bert-pretraining`"""
    shards, weights = _split_batch(batch, devices)
    mlm_total = float(batch[4].asnumpy().sum()) + 1e-8
    nsp_total = len(batch[0])
    with autograd.record():
        sums = [step_loss(*shard) for shard in shards]
        ls = [w * (mlm / mlm_total + nsp / nsp_total)
              for w, (mlm, nsp) in zip(weights, sums)]
    autograd.backward(ls)
    trainer.step(1)
    return [(w * mlm / mlm_total, w * nsp / nsp_total)
            for w, (mlm, nsp) in zip(weights, sums)]

def _batches(train_iter, num_steps):
    """Yield num_steps batches, going through the data as often as needed.

    Defined in :numref:`sec_bert-pretraining`"""
    step = 0
    while step < num_steps:
        epoch_start = step
        for batch in train_iter:
            yield batch
            step += 1
            if step == num_steps:
                return
        if step == epoch_start:
            raise ValueError('train_iter yielded no batch')

def _plot_losses(animator, metric, step, losses):
    """Read one step's losses from the devices, add them up and plot them.

    Defined in :numref:`sec_bert-pretraining`"""
    mlm_l = sum(float(mlm) for mlm, _ in losses)
    nsp_l = sum(float(nsp) for _, nsp in losses)
    metric.add(mlm_l, nsp_l, 0)
    animator.add(step, (mlm_l, nsp_l))

def train_bert(train_iter, net, loss, vocab_size, devices, num_steps,
               lr=1e-3):
    """Pretrain BERT with the MLM and NSP losses on all devices.

    Defined in :numref:`sec_bert-pretraining`"""
    step_loss = _PretrainingLoss(net, loss, vocab_size)
    step_loss.hybridize(static_alloc=True, static_shape=True)
    trainer = gluon.Trainer(net.collect_params(), 'adam',
                            {'learning_rate': lr})
    animator = d2l.Animator(xlabel='step', ylabel='loss',
                            xlim=[1, num_steps], legend=['mlm', 'nsp'])
    metric = d2l.Accumulator(3)  # MLM loss, NSP loss, sentence pairs
    timer = d2l.Timer()
    for step, batch in enumerate(_batches(train_iter, num_steps), 1):
        losses = _train_step(step_loss, trainer, batch, devices)
        metric.add(0, 0, len(batch[0]))
        if step > 1:  # the previous step has finished, or nearly so
            _plot_losses(animator, metric, step - 1, previous)
        previous = losses
    _plot_losses(animator, metric, num_steps, previous)
    npx.waitall()
    timer.stop()
    print(f'MLM loss {metric[0] / num_steps:.3f}, '
          f'NSP loss {metric[1] / num_steps:.3f}')
    print(f'{metric[2] / timer.sum():.1f} sentence pairs/sec on '
          f'{devices}')

def get_bert_encoding(net, tokens_a, tokens_b=None, *, vocab):
    """Return BERT's encoding of one sentence or a sentence pair.

    Defined in :numref:`sec_bert-pretraining`"""
    device = next(iter(net.collect_params().values())).list_ctx()[0]
    tokens, segments = d2l.get_tokens_and_segments(tokens_a, tokens_b)
    token_ids = np.array([vocab[tokens]], ctx=device, dtype='int32')
    segments = np.array([segments], ctx=device, dtype='int32')
    valid_lens = np.array([len(tokens)], ctx=device, dtype='float32')
    encoded_X, _, _ = net(token_ids, segments, valid_lens)
    return encoded_X

def save_bert(directory, net, vocab):
    """Save a BERT model's configuration, vocabulary and parameters.

    Defined in :numref:`sec_bert-pretraining`"""
    os.makedirs(directory, exist_ok=True)
    with open(os.path.join(directory, 'bert.json'), 'w',
              encoding='utf-8') as f:
        json.dump({'config': net.config, 'vocab': vocab.idx_to_token}, f)
    net.save_parameters(os.path.join(directory, 'bert.params'))

def load_bert(directory, devices):
    """Load a BERT model saved by save_bert; return (net, vocab).

    Defined in :numref:`sec_bert-pretraining`"""
    with open(os.path.join(directory, 'bert.json'), encoding='utf-8') as f:
        saved = json.load(f)
    vocab = d2l.Vocab(reserved_tokens=saved['vocab'][1:])
    net = d2l.BERTModel(**saved['config'])
    net.load_parameters(os.path.join(directory, 'bert.params'), ctx=devices)
    return net, vocab