"""Tests of fine-tuning BERT on SNLI (chapter_bert/bert-snli.md)."""

import os
import subprocess
import sys

import numpy as onp
import pytest
from mxnet import init, np

import offline_hub
from conftest import seed_all
from d2l import mxnet as d2l

OFFICIAL_HEADER = ('gold_label\tsentence1_binary_parse\tsentence2_binary_parse\t'
                   'sentence1_parse\tsentence2_parse\tsentence1\tsentence2\t'
                   'captionID\tpairID\tlabel1\tlabel2\tlabel3\tlabel4\tlabel5')
# the fixture's label counts, as its README gives them
DEV_COUNTS = {'entailment': 3329, 'neutral': 3235, 'contradiction': 3278}
TEST_COUNTS = {'entailment': 3368, 'neutral': 3219, 'contradiction': 3237}


def official_row(label, premise, hypothesis):
    """A row of the official files: parses and IDs filled with placeholders."""
    return '\t'.join([label, '( x )', '( y )', '(ROOT x)', '(ROOT y)',
                      premise, hypothesis, '1#0', '1#0r1e', label, '', '', '',
                      ''])


def write_split(folder, split, text):
    """Write folder/snli_1.0_<split>.txt; return its path."""
    folder.mkdir(exist_ok=True)
    path = folder / f'snli_1.0_{split}.txt'
    path.write_text(text, encoding='utf-8')
    return path


def serve_snli(monkeypatch, tmp_path, loopback_server, members):
    """Serve members as snli_1.0.zip through D2L_DATA_HUB."""
    www = tmp_path / 'www'
    www.mkdir()
    sha1 = offline_hub.make_archive(www / 'snli_1.0.zip', members)
    hub = tmp_path / 'hub.json'
    offline_hub.write_hub(hub, {'snli': [loopback_server(www) + 'snli_1.0.zip',
                                         sha1]})
    monkeypatch.setenv('D2L_DATA_HUB', str(hub))


@pytest.fixture
def fixture_hub(monkeypatch, tmp_path, loopback_server):
    """Serve the project's SNLI stand-in archive."""
    www = tmp_path / 'fixture'
    www.mkdir()
    sha1 = offline_hub.make_snli_archive(www / 'snli_1.0.zip')
    hub = tmp_path / 'hub.json'
    offline_hub.write_hub(hub, {'snli': [loopback_server(www) + 'snli_1.0.zip',
                                         sha1]})
    monkeypatch.setenv('D2L_DATA_HUB', str(hub))


def small_vocab():
    words = 'a the man woman dog plays guitar sleeps is outside . ,'.split()
    return d2l.Vocab(words, reserved_tokens=d2l.BERT_RESERVED_TOKENS)


def test_raw_and_penn_treebank_text_give_the_same_tokens():
    raw = 'A man, "Tom", plays guitar.'
    ptb = 'A man , ``Tom \'\' , plays guitar . '
    expected = ['a', 'man', ',', '"', 'tom', '"', ',', 'plays', 'guitar', '.']
    assert d2l.tokenize_snli(raw) == d2l.tokenize_snli(ptb) == expected


def test_read_snli_reads_the_official_layout(tmp_path):
    write_split(tmp_path, 'train', '\n'.join([
        OFFICIAL_HEADER,
        official_row('neutral', 'A man plays.', 'He is good.'),
        official_row('-', 'No majority here.', 'None.'),
        official_row('contradiction', 'A dog sleeps.', 'It runs.'),
        official_row('entailment', 'Two women.', 'People.')]) + '\n')
    premises, hypotheses, labels = d2l.read_snli(str(tmp_path), 'train')
    assert premises == [['a', 'man', 'plays', '.'],
                        ['a', 'dog', 'sleeps', '.'], ['two', 'women', '.']]
    assert hypotheses[1] == ['it', 'runs', '.']
    assert [d2l.SNLI_LABELS[y] for y in labels] == [
        'neutral', 'contradiction', 'entailment']
    assert labels.dtype == onp.int32


@pytest.mark.parametrize('text, problem', [
    ('gold_label\tsentence1\n', "lacks one of the columns"),
    ('gold_label\tsentence1\tsentence2\nneutral\ta b\n', 'line 2: 2 columns'),
    ('gold_label\tsentence1\tsentence2\nneutral\ta\tb\nyes\tc\td\n',
     "line 3: gold_label 'yes'"),
    ('gold_label\tsentence1\tsentence2\n-\ta\tb\n', 'no pair has a gold label'),
    ('', r'the header row \[\] lacks'),
    (b'gold_label\tsentence1\tsentence2\n\xff\n', 'cannot read'),
])
def test_read_snli_names_the_file_and_the_problem(tmp_path, text, problem):
    path = tmp_path / 'snli_1.0_test.txt'
    path.write_bytes(text if isinstance(text, bytes) else text.encode())
    with pytest.raises(d2l.DataError, match=problem) as error:
        d2l.read_snli(str(tmp_path), 'test')
    assert str(path) in str(error.value)


def test_read_snli_names_a_missing_file(tmp_path):
    with pytest.raises(d2l.DataError, match='snli_1.0_dev.txt'):
        d2l.read_snli(str(tmp_path), 'dev')


def truncate_one_at_a_time(len_a, len_b, max_len):
    """BERT's rule: drop a word from the longer sentence (b on ties)."""
    while len_a + len_b > max_len - 3:
        if len_a > len_b:
            len_a -= 1
        else:
            len_b -= 1
    return len_a, len_b


@pytest.mark.parametrize('max_len', [5, 6, 13, 14])
def test_truncation_equals_dropping_from_the_longer_sentence(max_len):
    grid = onp.arange(1, 25)
    len_a, len_b = [x.ravel() for x in onp.meshgrid(grid, grid)]
    keep_a, keep_b = d2l.truncate_pair_lengths(len_a, len_b, max_len)
    expected = [truncate_one_at_a_time(a, b, max_len)
                for a, b in zip(len_a, len_b)]
    assert list(zip(keep_a, keep_b)) == expected


def test_snli_inputs_lay_out_and_cut_pairs():
    vocab = small_vocab()
    premises = [['a', 'man', 'plays', 'guitar', '.'], ['a', 'dog', 'sleeps']]
    hypotheses = [['a', 'man', 'is', 'outside'], ['the', 'dog', 'sleeps']]
    tokens, segments, valid_lens = d2l.snli_inputs(premises, hypotheses, 10,
                                                   vocab)
    assert tokens.shape == segments.shape == (2, 10)
    # room for 7 words: the premise keeps 4 (half, rounded up), the hypothesis 3
    assert vocab.to_tokens(tokens[0].tolist()) == [
        '<cls>', 'a', 'man', 'plays', 'guitar', '<sep>', 'a', 'man', 'is',
        '<sep>']
    assert vocab.to_tokens(tokens[1].tolist()) == [
        '<cls>', 'a', 'dog', 'sleeps', '<sep>', 'the', 'dog', 'sleeps',
        '<sep>', '<pad>']
    assert segments[1].tolist() == [0] * 5 + [1] * 4 + [0]
    assert valid_lens.tolist() == [10, 9] and valid_lens.dtype == onp.float32


def test_load_data_snli_from_the_stand_in_archive(fixture_hub):
    vocab = small_vocab()
    train_iter, test_iter = d2l.load_data_snli(256, 40, vocab)
    for data_iter, counts in ((train_iter, DEV_COUNTS),
                              (test_iter, TEST_COUNTS)):
        batches = [[x.asnumpy() for x in batch] for batch in data_iter]
        tokens, segments, valid_lens, labels = [
            onp.concatenate(field) for field in zip(*batches)]
        assert len(labels) == sum(counts.values())
        assert tokens.shape == segments.shape == (len(labels), 40)
        assert (tokens[:, 0] == vocab['<cls>']).all()
        assert valid_lens.max() <= 40
        assert dict(zip(d2l.SNLI_LABELS, onp.bincount(labels))) == counts
    # the test pairs keep the file's order; the first is a neutral pair
    first = next(iter(test_iter))
    assert d2l.SNLI_LABELS[int(first[3][0])] == 'neutral'


@pytest.mark.parametrize('batch_size, max_len, problem', [
    (0, 40, 'batch_size'), (8.0, 40, 'batch_size'), (8, 4, 'max_len')])
def test_load_data_snli_refuses_bad_arguments(batch_size, max_len, problem):
    with pytest.raises(ValueError, match=problem):
        d2l.load_data_snli(batch_size, max_len, small_vocab())


def test_an_archive_without_a_test_split_is_named(monkeypatch, tmp_path,
                                                  loopback_server):
    table = 'gold_label\tsentence1\tsentence2\nneutral\tA b.\tC d.\n'
    serve_snli(monkeypatch, tmp_path, loopback_server,
               {'snli_1.0/snli_1.0_train.txt': table.encode()})
    with pytest.raises(d2l.DataError, match='snli_1.0_test.txt'):
        d2l.load_data_snli(8, 16, small_vocab())


def test_the_registered_url_is_named_when_it_cannot_be_reached(monkeypatch):
    monkeypatch.setitem(d2l.DATA_HUB, 'snli', (
        ('http://127.0.0.1:9/snli_1.0.zip',), d2l.DATA_HUB['snli'][1]))
    with pytest.raises(d2l.DataError, match='http://127.0.0.1:9/snli_1.0.zip'):
        d2l.load_data_snli(8, 16, small_vocab())


def make_classifier(vocab_size=30, max_len=16):
    seed_all(0)
    bert = d2l.BERTModel(vocab_size, num_hiddens=16, ffn_num_hiddens=32,
                         num_heads=2, num_layers=2, dropout=0.2,
                         max_len=max_len)
    bert.initialize(init.Xavier())
    classifier = d2l.BERTClassifier(bert, 3)
    classifier.output.initialize(init.Xavier())
    return bert, classifier


def random_pairs(batch_size, seq_len, vocab_size=30):
    tokens = np.random.randint(0, vocab_size, size=(batch_size, seq_len),
                               dtype='int32')
    segments = np.array([[0] * (seq_len // 2) + [1] * (seq_len - seq_len // 2)]
                        * batch_size, dtype='int32')
    return tokens, segments, np.array([seq_len - 2, seq_len] * (batch_size // 2))


def test_the_classifier_reuses_bert_and_gives_class_scores():
    bert, classifier = make_classifier()
    scores = classifier(*random_pairs(4, 10))
    assert scores.shape == (4, 3)
    params = list(classifier.collect_params().values())
    assert any(p is bert.nsp.pooler.weight for p in params)
    assert any(p is bert.encoder.token_table.weight for p in params)
    unused = [*bert.mlm.collect_params().values(), bert.nsp.output.weight]
    assert not any(p is q for p in params for q in unused)


@pytest.mark.parametrize('make', ['bert', 'bag'])
@pytest.mark.parametrize('hybridize', [False, True])
def test_padding_does_not_change_the_scores(make, hybridize):
    if make == 'bert':
        _, net = make_classifier()
    else:
        net = d2l.BagOfWords(30, 3)
        net.initialize(init.Normal(1.0))
    if hybridize:
        net.hybridize()
    tokens, segments, valid_lens = random_pairs(4, 10)
    padded = np.concatenate([tokens, np.full((4, 6), 3, dtype='int32')], 1)
    padded_segments = np.concatenate([segments, np.ones((4, 6), 'int32')], 1)
    onp.testing.assert_allclose(
        net(tokens, segments, valid_lens).asnumpy(),
        net(padded, padded_segments, valid_lens).asnumpy(), atol=1e-5)


def test_the_classifier_refuses_ids_outside_the_vocabulary():
    _, classifier = make_classifier()
    tokens, segments, valid_lens = random_pairs(2, 10)
    with pytest.raises(ValueError, match='token id 30 is outside'):
        classifier(tokens * 0 + 30, segments, valid_lens)


def test_bag_of_words_is_logistic_regression_on_counts():
    seed_all(1)
    vocab_size, bag = 30, d2l.BagOfWords(30, 3)
    bag.initialize(init.Normal(1.0))
    tokens, segments, valid_lens = random_pairs(4, 10)
    counts = onp.zeros((4, 2 * vocab_size))
    for i in range(4):
        for t in range(int(valid_lens[i])):
            counts[i, int(tokens[i, t] + vocab_size * segments[i, t])] += 1
    expected = (counts @ bag.weight.weight.data().asnumpy()
                + bag.bias.data().asnumpy())
    onp.testing.assert_allclose(bag(tokens, segments, valid_lens).asnumpy(),
                                expected, rtol=1e-5, atol=1e-5)


def test_train_classifier_learns_a_rule_on_two_devices():
    # The hypothesis is the label's word, thrice: a rule both models learn.
    seed_all(2)
    n, vocab_size = 256, 30
    labels = onp.random.randint(3, size=n).astype(onp.int32)
    tokens = onp.random.randint(8, vocab_size, size=(n, 8)).astype(onp.int32)
    tokens[:, 5:] = 5 + labels[:, None]
    segments = onp.array([[0] * 5 + [1] * 3] * n, dtype=onp.int32)
    valid_lens = onp.full(n, 8, dtype=onp.float32)
    dataset = d2l.gluon.data.ArrayDataset(tokens, segments, valid_lens, labels)
    data_iter = d2l.gluon.data.DataLoader(dataset, 32, shuffle=True)
    devices = [d2l.npx.cpu(0), d2l.npx.cpu(1)]
    bag = d2l.BagOfWords(vocab_size, 3)
    bag.initialize(init.Zero(), ctx=devices)
    d2l.train_classifier(bag, data_iter, 40, 0.1, devices)
    assert d2l.evaluate_classifier(bag, data_iter, devices[0]) == 1.0
    _, classifier = make_classifier(vocab_size)
    classifier.collect_params().reset_ctx(devices)
    loss = d2l.train_classifier(classifier, data_iter, 60, 3e-3, devices)
    assert d2l.evaluate_classifier(classifier, data_iter, devices[1]) > 0.9
    assert loss < 0.8 * onp.log(3)  # the last epoch's mean loss, with dropout


def test_a_frozen_classifier_trains_only_the_pooler_and_output():
    seed_all(3)
    bert = d2l.BERTModel(30, num_hiddens=16, ffn_num_hiddens=32, num_heads=2,
                         num_layers=1, dropout=0.0, max_len=16)
    bert.initialize(init.Xavier())
    classifier = d2l.BERTClassifier(bert, 3, frozen=True)
    classifier.output.initialize(init.Xavier())
    tokens, segments, valid_lens = random_pairs(32, 10)
    classifier(tokens, segments, valid_lens)  # complete the deferred shapes
    before = {name: p.data().asnumpy().copy()
              for name, p in classifier.collect_params().items()}
    labels = np.array(onp.random.randint(3, size=32).astype(onp.int32))
    data_iter = d2l.gluon.data.DataLoader(d2l.gluon.data.ArrayDataset(
        tokens, segments, valid_lens, labels), 16)
    d2l.train_classifier(classifier, data_iter, 5, 1e-2, [d2l.npx.cpu()])
    for name, p in classifier.collect_params().items():
        changed = not onp.array_equal(p.data().asnumpy(), before[name])
        in_head = p.name in {q.name for q in [
            *bert.nsp.pooler.collect_params().values(),
            *classifier.output.collect_params().values()]}
        assert changed == in_head, name


def test_load_data_snli_can_keep_a_random_subset(fixture_hub):
    vocab = small_vocab()
    seed_all(4)
    small, test_iter = d2l.load_data_snli(100, 40, vocab, num_train=250)
    assert sum(len(b[0]) for b in small) == 250
    assert sum(len(b[0]) for b in test_iter) == 9824
    seed_all(4)
    again, _ = d2l.load_data_snli(250, 40, vocab, num_train=250)
    rows = {tuple(r) for b in small for r in b[0].asnumpy()}
    assert rows == {tuple(r) for r in next(iter(again))[0].asnumpy()}


def test_the_offline_hub_serves_wikitext_and_snli(tmp_path):
    code = ('from d2l import mxnet as d2l; import os; '
            'w = d2l.download_wiki(); '
            's = d2l.read_snli(d2l.download_extract("snli", "snli_1.0"), "train"); '
            'print(sorted(os.listdir(w)), len(s[2]))')
    env = dict(os.environ, D2L_DATA_DIR=str(tmp_path / 'cache'))
    out = subprocess.run(
        [sys.executable, offline_hub.__file__, '--', sys.executable, '-c',
         code], env=env, capture_output=True, text=True, check=True).stdout
    assert out.split('\n')[-2] == (
        "['wiki.train.tokens', 'wiki.valid.tokens'] "
        f"{sum(DEV_COUNTS.values())}")
