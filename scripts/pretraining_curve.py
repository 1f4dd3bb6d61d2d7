"""Held-out accuracy of the chapter's BERT after longer pretraining.

Trains the model of chapter_bert/bert-pretraining.md with the library's own
step (d2l.train_step on d2l.PretrainingLoss, Adam at 1e-3, batches of 512
pairs of at most 64 tokens, all devices) and evaluates it on WikiText-2's
held-out split after each number of steps given, printing a markdown table.

    python scripts/pretraining_curve.py --steps 50 250 1000
    python tests/offline_hub.py -- python scripts/pretraining_curve.py  # offline
"""

import argparse
import random

import mxnet as mx
import numpy as onp
from mxnet import gluon, init

from d2l import mxnet as d2l


def main():
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('--steps', type=int, nargs='+', default=[50, 250, 1000])
    args = parser.parse_args()
    random.seed(0)
    onp.random.seed(0)
    mx.random.seed(0)
    train_iter, vocab = d2l.load_data_wiki(512, 64)
    held_out_iter, _ = d2l.load_data_wiki(512, 64, split='valid', vocab=vocab)
    d2l.describe_wiki(d2l.download_wiki())
    devices = d2l.try_all_gpus()
    net = d2l.BERTModel(len(vocab), num_hiddens=128, num_heads=2,
                        ffn_num_hiddens=256, num_layers=2, dropout=0.2,
                        max_len=64)
    net.initialize(init.Xavier(), ctx=devices)
    step_loss = d2l.PretrainingLoss(net, d2l.CrossEntropyLoss(), len(vocab))
    step_loss.hybridize(static_alloc=True, static_shape=True)
    trainer = gluon.Trainer(net.collect_params(), 'adam',
                            {'learning_rate': 1e-3})
    print(f'vocabulary: {len(vocab)} tokens; devices: {devices}')
    print('| steps | held-out MLM accuracy | held-out NSP accuracy |')
    print('|---:|---:|---:|')
    _, _, _, _, train_weights, train_labels, _ = train_iter._dataset.arrays
    _, _, _, _, weights, labels, _ = held_out_iter._dataset.arrays
    most_frequent = onp.bincount(train_labels[train_weights == 1]).argmax()
    baseline = (labels[weights == 1] == most_frequent).mean()
    print(f'| baseline: always {vocab.to_tokens(most_frequent)!r} / coin flip '
          f'| {baseline:.3f} | 0.500 |')
    mlm_acc, nsp_acc = d2l.evaluate_bert(net, held_out_iter, devices[0])
    print(f'| 0 | {mlm_acc:.3f} | {nsp_acc:.3f} |', flush=True)
    for step, batch in enumerate(
            d2l.endless_batches(train_iter, max(args.steps)), 1):
        d2l.train_step(step_loss, trainer, batch, devices)
        if step in args.steps:
            mlm_acc, nsp_acc = d2l.evaluate_bert(net, held_out_iter, devices[0])
            print(f'| {step:,} | {mlm_acc:.3f} | {nsp_acc:.3f} |', flush=True)


if __name__ == '__main__':
    main()
