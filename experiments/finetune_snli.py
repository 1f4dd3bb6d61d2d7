"""The SNLI comparison of chapter_bert/bert-snli.md, over several seeds.

For every seed, trains each classifier of the section's comparison on SNLI's
training split (and the two fine-tuned BERTs again on a random subset of
--small pairs), scores it on the test split, and prints one markdown row per
classifier: the mean test accuracy and its standard deviation over the seeds,
and the mean training loss of the last epoch. Every run is also written to
--out as JSON, from which tools/draw_figures.py draws the section's figure.

The pretrained BERT is the chapter's (d2l.pretrained_bert: the model the
pretraining section saved in the dataset cache, pretrained first if missing),
or the one that `scripts/pretrain.py --save DIR` wrote, with --bert DIR.

    python tools/offline_hub.py -- \
        python experiments/finetune_snli.py --out results/finetune_snli.json
"""

import argparse
import contextlib
import datetime
import io
import json
import os
import platform
import random
import sys

import mxnet as mx
import numpy as onp
from mxnet import init

from d2l import mxnet as d2l

BATCH_SIZE, MAX_LEN = 64, 48
ROWS = {'bag': 'bag of words', 'scratch': 'BERT from scratch, fine-tuned',
        'pretrained': 'pretrained BERT, fine-tuned',
        'scratch frozen': 'random encoder, frozen (probe)',
        'pretrained frozen': 'pretrained encoder, frozen (probe)'}


def bert_classifier(kind, vocab_size, devices, bert_dir):
    """A classifier on a new random BERT or on a fresh copy of the pretrained one."""
    if kind.startswith('scratch'):
        bert = d2l.small_bert(vocab_size, d2l.PRETRAINING['max_len'], devices)
    elif bert_dir:
        bert, _ = d2l.load_bert(bert_dir, devices)
    else:
        bert, _ = d2l.pretrained_bert(devices)
    classifier = d2l.BERTClassifier(bert, len(d2l.SNLI_LABELS),
                                    frozen=kind.endswith('frozen'))
    classifier.output.initialize(init.Xavier(), ctx=devices)
    classifier.hybridize()
    return classifier


def run_seed(seed, vocab, args, devices):
    """Train and score every classifier once; return {row: (accuracy, loss)}."""
    results = {}
    for num_train in (None, args.small):
        random.seed(seed)
        onp.random.seed(seed)
        mx.random.seed(seed)
        train_iter, test_iter = d2l.load_data_snli(BATCH_SIZE, MAX_LEN, vocab,
                                                   num_train)
        steps = (args.epochs * len(train_iter) if num_train is None
                 else args.small_steps)
        suffix = '' if num_train is None else f', {num_train:,} pairs'
        kinds = (['bag', 'scratch', 'pretrained', 'scratch frozen',
                  'pretrained frozen'] if num_train is None
                 else ['scratch', 'pretrained'])
        for kind in kinds:
            if kind == 'bag':
                net = d2l.BagOfWords(len(vocab), len(d2l.SNLI_LABELS))
                net.initialize(init.Zero(), ctx=devices)
                lr = args.bag_lr
            else:
                net, lr = bert_classifier(kind, len(vocab), devices,
                                          args.bert), args.lr
            with contextlib.redirect_stdout(io.StringIO()):
                loss = d2l.train_classifier(net, train_iter, steps, lr, devices)
            row = ROWS[kind] + suffix
            results[row] = (d2l.evaluate_classifier(net, test_iter,
                                                    devices[0]), loss)
            print(f'seed {seed}: {row}: {results[row]}', file=sys.stderr,
                  flush=True)
        labels = onp.concatenate([b[3].asnumpy() for b in train_iter])
        majority = onp.bincount(labels).argmax()
        test_labels = onp.concatenate([b[3].asnumpy() for b in test_iter])
        if num_train is None:
            results['always the majority label'] = (
                (test_labels == majority).mean(), None)
    return results


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('--seeds', type=int, nargs='+', default=[0, 1, 2])
    parser.add_argument('--epochs', type=int, default=6,
                        help='fine-tuning epochs on the whole training split')
    parser.add_argument('--small', type=int, default=1000,
                        help='training pairs of the small-data runs')
    parser.add_argument('--small-steps', type=int, default=300)
    parser.add_argument('--lr', type=float, default=1e-3)
    parser.add_argument('--bag-lr', type=float, default=1e-2)
    parser.add_argument('--bert', metavar='DIR',
                        help='a BERT saved by scripts/pretrain.py --save')
    parser.add_argument('--out', metavar='FILE', help='write the runs as JSON')
    args = parser.parse_args()
    d2l.describe_wiki(d2l.download_wiki())
    devices = d2l.try_all_gpus()
    _, vocab = (d2l.load_bert(args.bert, devices) if args.bert
                else d2l.pretrained_bert(devices))
    premises, hypotheses, _ = d2l.read_snli(
        d2l.download_extract('snli', 'snli_1.0'), 'train')
    words = [w for p, h in zip(premises, hypotheses) for w in p + h]
    unk = onp.mean([vocab[w] == vocab.unk for w in words])
    print(f'{unk:.1%} of the training split\'s words are <unk> in the '
          f'pretraining vocabulary of {len(vocab)} tokens')
    runs = [run_seed(seed, vocab, args, devices) for seed in args.seeds]
    print(f'| classifier | test accuracy, mean ± sd over {len(runs)} seeds '
          '| last epoch\'s training loss |')
    print('|---|---:|---:|')
    for row in runs[0]:
        acc = onp.array([r[row][0] for r in runs])
        loss = [r[row][1] for r in runs]
        loss = '—' if loss[0] is None else f'{onp.mean(loss):.3f}'
        print(f'| {row} | {acc.mean():.3f} ± {acc.std(ddof=1):.3f} | {loss} |')
    if args.out:
        with open(args.out, 'w', encoding='utf-8') as f:
            json.dump({'command': ' '.join(sys.argv),
                       'machine': f'{os.cpu_count()} cores, '
                                  f'{platform.machine()}, MXNet {mx.__version__}',
                       'date': datetime.date.today().isoformat(),
                       'unk_share': unk,
                       'args': vars(args), 'seeds': args.seeds,
                       'runs': {row: [r[row] for r in runs] for row in runs[0]}},
                      f, indent=1)


if __name__ == '__main__':
    main()
