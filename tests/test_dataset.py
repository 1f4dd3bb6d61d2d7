"""Tests of the BERT pretraining data (chapter_bert/bert-dataset.md).

Statistical checks run on the real-text fixture, the WikiText-2 validation
split. Each one allows 4.5 standard errors of the estimate: a correct
implementation fails such a check with probability below 1e-5, while the
deviations we guard against (a wrong mixture, a biased choice) are many
standard errors wide at these sample sizes.
"""

import math
import random
import shutil

import mxnet as mx
import numpy as onp
import pytest

import offline_hub
from conftest import seed_all
from d2l import mxnet as d2l

Z = 4.5  # allowed deviation, in standard errors
SPECIALS = ['<unk>', '<pad>', '<mask>', '<cls>', '<sep>']


@pytest.fixture(scope='module')
def paragraphs(tmp_path_factory, wiki_fixture):
    data_dir = tmp_path_factory.mktemp('wiki')
    shutil.copy(wiki_fixture, data_dir / 'wiki.train.tokens')
    return d2l.read_wiki(str(data_dir))


@pytest.fixture(scope='module')
def dataset(paragraphs):
    seed_all(0)
    return d2l.WikiTextDataset(paragraphs, 64)


def publish(tmp_path, loopback_server, folder, members):
    """Serve members as folder/wikitext-2-v1.zip; return its URL and SHA-1."""
    directory = tmp_path / folder
    directory.mkdir()
    sha1 = offline_hub.make_archive(directory / 'wikitext-2-v1.zip', members)
    return loopback_server(directory) + 'wikitext-2-v1.zip', sha1


def point_hub(monkeypatch, tmp_path, url, sha1):
    """Make D2L_DATA_HUB override the wikitext-2 entry."""
    hub = tmp_path / 'hub.json'
    offline_hub.write_hub(hub, {'wikitext-2': [url, sha1]})
    monkeypatch.setenv('D2L_DATA_HUB', str(hub))


@pytest.fixture
def good_archive(tmp_path, loopback_server, wiki_fixture):
    """URL and SHA-1 of an archive with the fixture as training split."""
    return publish(tmp_path, loopback_server, 'good', {
        'wikitext-2/wiki.train.tokens': wiki_fixture.read_bytes(),
        'wikitext-2/wiki.valid.tokens': offline_hub.HELD_OUT.read_bytes()})


def epoch(batch_size=512, max_len=64):
    """Load the data; return one epoch concatenated, vocab and batches."""
    train_iter, vocab = d2l.load_data_wiki(batch_size, max_len)
    batches = [[x.asnumpy() for x in batch] for batch in train_iter]
    return [onp.concatenate(field) for field in zip(*batches)], vocab, batches


def unmask(dataset):
    """Return the dataset's tokens with every prediction position restored."""
    tokens, _, _, positions, weights, labels, _ = dataset.arrays
    original = tokens.copy()
    rows, slots = weights.nonzero()
    original[rows, positions[rows, slots]] = labels[rows, slots]
    return original


def test_read_wiki(tmp_path):
    (tmp_path / 'wiki.train.tokens').write_text(
        ' = Title = \n \n A b . C d . E . \n Only one . \n Xy . Zw \n',
        encoding='utf-8')
    assert d2l.read_wiki(str(tmp_path)) == [['a b', 'c d', 'e .'],
                                             ['xy', 'zw']]


def test_nsp_pairs_follow_paragraphs_and_draw_uniformly():
    # Half the paragraphs have 2 sentences, half 20: drawing a paragraph and
    # then one of its sentences puts half the random sentences in the short
    # paragraphs; drawing a sentence of the corpus would put only 1/11 there.
    sizes = onp.array([2, 20] * 2000)
    seed_all(1)
    first, second, is_next = d2l.get_nsp_pairs(sizes)
    ends = onp.cumsum(sizes)
    paragraph_of = onp.repeat(onp.arange(len(sizes)), sizes)
    assert len(first) == (sizes - 1).sum()
    assert not onp.isin(first, ends - 1).any()  # each has a successor
    assert (second[is_next] == first[is_next] + 1).all()
    n = len(first)
    assert abs(is_next.mean() - 0.5) < Z * math.sqrt(0.25 / n)
    drawn = second[~is_next]
    paragraph = paragraph_of[drawn]
    index = drawn - (ends - sizes)[paragraph]  # position in its paragraph
    short = sizes[paragraph] == 2
    assert abs(short.mean() - 0.5) < Z * math.sqrt(0.25 / len(drawn))
    # Within a paragraph the sentence is uniform: index 1 half the time in
    # short ones; in long ones mean 9.5 and variance (20 ** 2 - 1) / 12.
    assert abs(index[short].mean() - 0.5) < Z * math.sqrt(0.25 / short.sum())
    assert abs(index[~short].mean() - 9.5) < Z * math.sqrt(
        399 / 12 / (~short).sum())


def test_nsp_labels_half_real_and_true(paragraphs):
    # max_len of twice the longest sentence plus 3 keeps every pair, so the
    # labels are plain Bernoulli(1/2) draws.
    longest = max(len(s.split()) for p in paragraphs for s in p)
    seed_all(2)
    dataset = d2l.WikiTextDataset(paragraphs, 2 * longest + 3)
    num_pairs = sum(len(p) - 1 for p in paragraphs)
    nsp = dataset.arrays[-1]
    assert len(dataset) == num_pairs
    assert abs(nsp.mean() - 0.5) < Z * math.sqrt(0.25 / num_pairs)
    # A label 1 pair is two consecutive sentences of one paragraph.
    vocab = dataset.vocab
    adjacent = set()
    for p in paragraphs:
        ids = [tuple(vocab[s.split()]) for s in p]
        adjacent.update(zip(ids, ids[1:]))
    tokens, segments = unmask(dataset), dataset.arrays[1]
    valid_lens = dataset.arrays[2].astype(int)
    found = []
    for row, seg, n in zip(tokens, segments, valid_lens):
        a, b = row[1:n - 1][seg[1:n - 1] == 0], row[1:n - 1][seg[1:n - 1] == 1]
        found.append((tuple(a[:-1]), tuple(b)) in adjacent)  # a ends in <sep>
    found = onp.array(found)
    assert found[nsp == 1].all()
    assert found[nsp == 0].mean() < 0.05  # random pairs are rarely adjacent


def test_mask_random_keep_proportions(dataset):
    tokens, _, _, positions, weights, labels, _ = dataset.arrays
    vocab = dataset.vocab
    rows, slots = weights.nonzero()
    now = tokens[rows, positions[rows, slots]]
    was = labels[rows, slots]
    n = len(now)
    masked = now == vocab['<mask>']
    kept = now == was
    replaced = ~masked & ~kept
    for observed, p in [(masked, 0.8), (replaced, 0.1), (kept, 0.1)]:
        # A random word equals the original with chance ~1/len(vocab) < 1e-3,
        # far inside the tolerance.
        assert abs(observed.mean() - p) < Z * math.sqrt(p * (1 - p) / n)
    # Random replacements are words, drawn uniformly from all the words.
    words = onp.setdiff1d(onp.arange(len(vocab)), vocab[SPECIALS])
    assert onp.isin(now[replaced], words).all()
    lo, hi = words.min(), words.max()
    assert len(words) == hi - lo + 1  # the words are one run of indices
    mean, var = (lo + hi) / 2, ((hi - lo + 1) ** 2 - 1) / 12
    assert abs(now[replaced].mean() - mean) < Z * math.sqrt(
        var / replaced.sum())


def test_prediction_positions_uniform_over_the_pair(dataset):
    # Count the predictions that fall in the first sentence: per row it is
    # hypergeometric (k draws from N words of which K are in the first
    # sentence), so the total has a known mean and variance.
    tokens, segments, valid_lens, positions, weights, _, _ = dataset.arrays
    k = weights.sum(axis=1)
    unk = tokens == dataset.vocab.unk  # never predicted, never replaced
    N = valid_lens - 3 - unk.sum(axis=1)
    K = ((segments == 0).sum(axis=1) - (segments.shape[1] - valid_lens) - 2
         - (unk & (segments == 0)).sum(axis=1))
    in_first = ((segments[onp.arange(len(k))[:, None], positions] == 0)
                * weights).sum()
    mean = (k * K / N).sum()
    var = (k * (K / N) * (1 - K / N) * (N - k) / onp.maximum(N - 1, 1)).sum()
    assert abs(in_first - mean) < Z * math.sqrt(var)


def test_every_example_of_an_epoch(monkeypatch, tmp_path, good_archive,
                                   paragraphs):
    point_hub(monkeypatch, tmp_path, *good_archive)
    seed_all(3)
    (tokens, segments, valid_lens, positions, weights, labels, nsp), vocab, \
        batches = epoch()
    # The epoch is the dataset built from the same text and seed, shuffled.
    seed_all(3)
    dataset = d2l.WikiTextDataset(paragraphs, 64)
    rows = [tuple(row) for row in dataset.arrays[0]]
    assert sorted(rows) == sorted(tuple(row) for row in tokens)
    assert rows != [tuple(row) for row in tokens]
    assert [b[0].shape for b in batches[:-1]] == [(512, 64)] * (
        len(batches) - 1)
    assert [x.dtype for x in batches[0]] == [
        onp.int32, onp.int32, onp.float32, onp.int32, onp.float32, onp.int32,
        onp.int32]
    assert positions.shape == weights.shape == labels.shape == (
        len(tokens), round(0.15 * 64))
    cls, sep, pad, mask = vocab[['<cls>', '<sep>', '<pad>', '<mask>']]
    assert set(nsp.tolist()) == {0, 1}
    for i in range(len(tokens)):
        n = int(valid_lens[i])
        assert n == valid_lens[i] and 5 <= n <= 64
        row, seg = tokens[i], segments[i]
        assert row[0] == cls and (row[1:] != cls).all()
        assert (row[n:] == pad).all() and (row[:n] != pad).all()
        seps = onp.flatnonzero(row == sep)
        assert len(seps) == 2 and seps[1] == n - 1 and 1 < seps[0] < n - 2
        assert (seg[:seps[0] + 1] == 0).all()
        assert (seg[seps[0] + 1:n] == 1).all()
        assert (seg[n:] == 0).all()
        words = n - 3 - (row[:n] == vocab.unk).sum()  # never <unk>
        k = min(max(1, round(0.15 * n)), words)
        assert (weights[i, :k] == 1).all() and (weights[i, k:] == 0).all()
        used = positions[i, :k]
        assert len(set(used.tolist())) == k
        assert ((used > 0) & (used < n) & (used != seps[0])).all()
        assert (positions[i, k:] == 0).all() and (labels[i, k:] == 0).all()
        assert not onp.isin(labels[i, :k], [vocab.unk, cls, sep, pad, mask]).any()
        unchosen = onp.setdiff1d(onp.arange(n), used)
        assert (row[unchosen] != mask).all()


def test_same_seeds_same_batches(monkeypatch, tmp_path, good_archive):
    point_hub(monkeypatch, tmp_path, *good_archive)
    runs = []
    for seed in [4, 4, 5]:
        seed_all(seed)
        runs.append(epoch()[2])
    same, other = runs[1], runs[2]
    for a, b in zip(runs[0], same):
        for x, y in zip(a, b):
            onp.testing.assert_array_equal(x, y)
    assert not all(onp.array_equal(x, y)
                   for x, y in zip(runs[0][0], other[0]))


def test_numpy_seed_alone_decides_the_batches(monkeypatch, tmp_path,
                                              good_archive):
    # Only NumPy is reseeded between the two loads.
    point_hub(monkeypatch, tmp_path, *good_archive)
    seed_all(6)
    first = epoch()[2][0][0]
    random.seed(99)
    mx.random.seed(99)
    onp.random.seed(6)
    onp.testing.assert_array_equal(first, epoch()[2][0][0])


def test_unk_is_never_predicted():
    vocab = d2l.Vocab(['a', 'b'], reserved_tokens=d2l.BERT_RESERVED_TOKENS)
    unk, cls, sep, pad = vocab[['<unk>', '<cls>', '<sep>', '<pad>']]
    a, b = vocab[['a', 'b']]
    tokens = onp.array([[cls, unk, unk, sep, unk, sep, pad, pad, pad, pad],
                        [cls, unk, a, sep, unk, b, sep, pad, pad, pad],
                        [cls, a, a, a, sep, b, b, b, b, sep]], onp.int32)
    seed_all(8)
    for _ in range(20):
        masked, positions, weights, labels = d2l.mask_tokens(
            tokens, onp.array([6, 7, 10]), vocab)
        # no word: no slot; else max(1, round(0.15 * valid_len)) of the words
        assert weights.sum(axis=1).tolist() == [0, 1, 2]
        rows, slots = weights.nonzero()
        assert not onp.isin(labels[rows, slots], [unk, cls, sep, pad]).any()
        assert onp.isin(tokens[rows, positions[rows, slots]], [a, b]).all()
        assert (masked[tokens == unk] == unk).all()


def test_the_training_loader_draws_anew_each_epoch(paragraphs):
    seed_all(9)
    dataset = d2l.WikiTextDataset(paragraphs, 64, progress=False)
    loader = d2l.WikiTextLoader(dataset, 256, train=True)
    epochs = [[[x.asnumpy() for x in b] for b in loader] for _ in range(3)]
    lengths = [sum(len(b[0]) for b in e) for e in epochs]
    assert lengths[-1] == len(dataset) and len(loader) == len(epochs[-1])
    firsts = [{tuple(r) for b in e for r in unmasked_rows(b)} for e in epochs]
    # new second sentences: most pairs of one epoch are not in the next
    assert len(firsts[0] & firsts[1]) < 0.7 * len(firsts[0])
    masks = [onp.concatenate([b[4] for b in e]).sum() for e in epochs]
    assert len(set(lengths)) > 1 or len(set(masks)) > 1
    held_out = d2l.WikiTextLoader(dataset, 256, train=False)
    once, twice = ([x.asnumpy() for x in b] for b in held_out), \
        ([x.asnumpy() for x in b] for b in held_out)
    for x, y in zip(once, twice):
        for u, v in zip(x, y):
            onp.testing.assert_array_equal(u, v)
    seed_all(9)
    again = d2l.WikiTextLoader(d2l.WikiTextDataset(paragraphs, 64, progress=False),
                               256, train=True)
    for e in epochs:  # the same seed, the same epochs
        for x, y in zip(e, again):
            onp.testing.assert_array_equal(x[0], y[0].asnumpy())


def packed_pairs(batch):
    """The (tokens, segments, NSP label) of every pair of a packed batch."""
    tokens, segments, valid_lens, *_, nsp, positions, cls, nsp_weights = batch
    pairs = []
    for r in range(len(tokens)):
        starts = onp.flatnonzero(positions[r, :int(valid_lens[r])] == 0)
        ends = [*starts[1:], int(valid_lens[r])]
        assert sorted(cls[r][nsp_weights[r] == 1].tolist()) == starts.tolist()
        for c, (s, e) in enumerate(zip(starts, ends)):
            assert cls[r, c] == s
            onp.testing.assert_array_equal(positions[r, s:e], onp.arange(e - s))
            pairs.append((tuple(tokens[r, s:e]), tuple(segments[r, s:e]),
                          int(nsp[r, c])))
    return pairs


def test_a_packed_epoch_holds_every_pair_of_its_draw(paragraphs):
    seed_all(2)
    dataset = d2l.WikiTextDataset(paragraphs, 64, progress=False)
    loader = d2l.WikiTextLoader(dataset, 512, train=True, packed=True)
    batches = [[x.asnumpy() for x in b] for b in loader]
    assert len(batches) == len(loader)
    assert [b[0].shape for b in batches[:-1]] == [(341, 96)] * (
        len(batches) - 1)
    tokens, segments, valid_lens, *_, nsp = dataset.arrays
    padded = sorted((tuple(tokens[i, :int(n)]), tuple(segments[i, :int(n)]),
                     int(nsp[i])) for i, n in enumerate(valid_lens))
    assert sorted(p for b in batches for p in packed_pairs(b)) == padded
    assert sum(d2l.count_pairs(b) for b in batches) == len(dataset)
    rows = sum(len(b[0]) for b in batches)
    assert rows < 0.53 * len(dataset)  # 1.95 pairs a row on this text
    filled = sum(b[2].sum() for b in batches) / (rows * 96)
    assert filled > 0.92, filled  # 93%; one pair per row of 64 fills 72%


@pytest.mark.parametrize('packed', [1, 'yes', None])
def test_packed_must_be_a_bool(packed):
    with pytest.raises(ValueError, match=f'packed must be True or False, '
                                         f'got {packed!r}'):
        d2l.load_data_wiki(64, 64, packed=packed)


def unmasked_rows(batch):
    """The rows of a batch with the prediction positions restored."""
    tokens, _, _, positions, weights, labels, _ = batch
    original = tokens.copy()
    rows, slots = weights.nonzero()
    original[rows, positions[rows, slots]] = labels[rows, slots]
    return original


def test_no_pair_fits(paragraphs):
    with pytest.raises(ValueError, match='max_len=4'):
        d2l.WikiTextDataset(paragraphs, 4)


def test_canonical_files_checked(monkeypatch, tmp_path, loopback_server,
                                 wiki_fixture):
    # Without D2L_DATA_HUB, the text files must be WikiText-2's own.
    valid = wiki_fixture.read_bytes()  # the canonical validation split
    url, sha1 = publish(tmp_path, loopback_server, 'renamed', {
        'wikitext-2/wiki.train.tokens': valid,
        'wikitext-2/wiki.valid.tokens': valid})
    monkeypatch.setitem(d2l.DATA_HUB, 'wikitext-2', ((url,), sha1))
    with pytest.raises(d2l.DataError, match=r'wiki\.train\.tokens: SHA-1 '
                       r'mismatch: expected 863f29c46ef9d167fff4940ec82119'):
        d2l.load_data_wiki(64, 64)
    # Pretend the fixture were the canonical training split: a true validation
    # split passes, a wrong one is refused.
    monkeypatch.setitem(d2l.WIKITEXT2_SHA1, 'wiki.train.tokens',
                        offline_hub.sha1sum(wiki_fixture))
    train_iter, vocab = d2l.load_data_wiki(64, 64)
    assert len(vocab) > 1000
    url, sha1 = publish(tmp_path, loopback_server, 'bad_valid', {
        'wikitext-2/wiki.train.tokens': valid,
        'wikitext-2/wiki.valid.tokens': valid + b'\n'})
    monkeypatch.setitem(d2l.DATA_HUB, 'wikitext-2', ((url,), sha1))
    with pytest.raises(d2l.DataError, match=r'wiki\.valid\.tokens: SHA-1 '
                       r'mismatch: expected 0418625c8b4da6e4b5c7a0b9e78d4ae8'):
        d2l.load_data_wiki(64, 64)


def test_held_out_split_uses_the_given_vocab_in_order(monkeypatch, tmp_path,
                                                      good_archive):
    point_hub(monkeypatch, tmp_path, *good_archive)
    seed_all(7)
    train_iter, vocab = d2l.load_data_wiki(64, 64)
    held_out_iter, held_out_vocab = d2l.load_data_wiki(64, 64, 'valid', vocab)
    assert held_out_vocab is vocab
    dataset = held_out_iter.dataset
    first = next(iter(held_out_iter))
    onp.testing.assert_array_equal(first[0].asnumpy(), dataset.arrays[0][:64])
    # The held-out text is the test split, not the training text.
    held_out = {tuple(row) for row in dataset.arrays[0]}
    trained = {tuple(row) for row in train_iter.dataset.arrays[0]}
    assert len(held_out & trained) < 0.01 * len(held_out)


@pytest.mark.parametrize('batch_size, max_len, message', [
    (0, 64, 'batch_size must be a positive integer, got 0'),
    (-1, 64, 'batch_size must be a positive integer, got -1'),
    (2.5, 64, 'batch_size must be a positive integer, got 2.5'),
    (64, 4, 'max_len must be an integer of at least 5'),
])
def test_bad_arguments_are_refused_before_any_download(batch_size, max_len,
                                                       message):
    with pytest.raises(ValueError, match=message):
        d2l.load_data_wiki(batch_size, max_len)


def test_a_corpus_without_frequent_words_is_refused(tmp_path):
    (tmp_path / 'wiki.train.tokens').write_text(
        ' A b . C d . \n E f . G h . \n', encoding='utf-8')
    with pytest.raises(ValueError, match='no word occurs 5 times or more'):
        d2l.WikiTextDataset(d2l.read_wiki(str(tmp_path)), 16)


BAD_TRAIN = {  # archives whose training split is missing or unusable
    'no_train': None,
    'no_pairs': b' = Title = \n \n One sentence only . \n',
    'not_utf8': b' A \xff b . C d . \n',
}


@pytest.mark.parametrize('case, message', [
    ('wrong_sha1', r'expected SHA-1 0{40}'),
    ('not_found', r'missing/wikitext-2-v1\.zip: HTTP status 404'),
    ('corrupt', r'cannot extract .*wikitext-2-v1\.zip'),
    ('no_train', r'wiki\.train\.tokens is missing'),
    ('no_pairs', r'wiki\.train\.tokens: no line holds two sentences'),
    ('not_utf8', r'wiki\.train\.tokens is not UTF-8'),
])
def test_bad_data_refused_then_good_loads(
        case, message, monkeypatch, tmp_path, loopback_server, wiki_fixture,
        good_archive):
    good_url, good_sha1 = good_archive
    if case == 'wrong_sha1':
        url, sha1 = good_url, '0' * 40
    elif case == 'not_found':
        url = loopback_server(tmp_path) + 'missing/wikitext-2-v1.zip'
        sha1 = good_sha1
    elif case == 'corrupt':
        url, sha1 = publish(tmp_path, loopback_server, 'bad', {})
        (tmp_path / 'bad' / 'wikitext-2-v1.zip').write_bytes(b'not a zip')
        sha1 = offline_hub.sha1sum(tmp_path / 'bad' / 'wikitext-2-v1.zip')
    else:
        members = {'wikitext-2/wiki.valid.tokens': wiki_fixture.read_bytes()}
        if BAD_TRAIN[case] is not None:
            members['wikitext-2/wiki.train.tokens'] = BAD_TRAIN[case]
        url, sha1 = publish(tmp_path, loopback_server, 'bad', members)
    point_hub(monkeypatch, tmp_path, url, sha1)
    for _ in range(2):  # a refusal leaves nothing that a retry would trust
        with pytest.raises(d2l.DataError, match=message):
            d2l.load_data_wiki(64, 64)
    point_hub(monkeypatch, tmp_path, good_url, good_sha1)
    train_iter, vocab = d2l.load_data_wiki(64, 64)
    assert len(next(iter(train_iter))[0]) == 64 and len(vocab) > 1000


def test_the_progress_bar_can_be_turned_off(paragraphs, capfd):
    d2l.WikiTextDataset(paragraphs[:50], 64)
    assert 'Building BERT examples' in capfd.readouterr().err
    d2l.WikiTextDataset(paragraphs[:50], 64, progress=False)
    assert capfd.readouterr().err == ''
