"""SNLI test accuracy of the chapter's BERT after longer pretraining.

Pretrains the model of chapter_bert/bert-snli.md (the chapter's configuration,
d2l.train_step on WikiText-2, Adam at 1e-3, batches of 512 pairs of at most 64
tokens) and, after each number of pretraining steps given, fine-tunes a copy
of it on SNLI with the section's budget (150 steps of 64 pairs, Adam at 2e-4,
max_len 48) and prints its test accuracy as a row of a markdown table. Row 0
is the same network fine-tuned from its random initialization.

    python scripts/finetune_snli.py --pretrain-steps 500 2000
    python tests/offline_hub.py -- python scripts/finetune_snli.py  # offline
"""

import argparse
import os
import random
import tempfile

import mxnet as mx
import numpy as onp
from mxnet import gluon, init

from d2l import mxnet as d2l


def finetune(directory, train_iter, test_iter, devices, num_steps, lr):
    """Fine-tune the BERT saved in directory; return its test accuracy."""
    bert, _ = d2l.load_bert(directory, devices)
    classifier = d2l.BERTClassifier(bert, len(d2l.SNLI_LABELS))
    classifier.output.initialize(init.Xavier(), ctx=devices)
    classifier.hybridize()
    d2l.train_classifier(classifier, train_iter, num_steps, lr, devices)
    return d2l.evaluate_classifier(classifier, test_iter, devices[0])


def main():
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('--pretrain-steps', type=int, nargs='+',
                        default=[50, 500, 2000])
    parser.add_argument('--finetune-steps', type=int, default=150)
    parser.add_argument('--lr', type=float, default=2e-4)
    args = parser.parse_args()
    random.seed(0)
    onp.random.seed(0)
    mx.random.seed(0)
    wiki_iter, vocab = d2l.load_data_wiki(512, 64)
    held_out_iter, _ = d2l.load_data_wiki(512, 64, 'valid', vocab)
    d2l.describe_wiki(d2l.download_wiki())
    train_iter, test_iter = d2l.load_data_snli(64, 48, vocab)
    devices = d2l.try_all_gpus()
    net = d2l.BERTModel(len(vocab), num_hiddens=128, num_heads=2,
                        ffn_num_hiddens=256, num_layers=2, dropout=0.2,
                        max_len=64)
    net.initialize(init.Xavier(), ctx=devices)
    ones = mx.np.ones((1, 4), dtype='int32', ctx=devices[0])
    net(ones, 0 * ones, None, ones[:, :1])  # complete the deferred shapes
    adam = gluon.Trainer(net.collect_params(), 'adam', {'learning_rate': 1e-3})
    pretraining_loss = d2l.PretrainingLoss(net, d2l.CrossEntropyLoss(),
                                           len(vocab))
    pretraining_loss.hybridize(static_alloc=True, static_shape=True)
    print(f'vocabulary: {len(vocab)} tokens; devices: {devices}')
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        checkpoint = os.path.join(tmp, 'bert')
        batches = d2l.endless_batches(wiki_iter, max(args.pretrain_steps))
        for step in range(max(args.pretrain_steps) + 1):
            if step > 0:
                d2l.train_step(pretraining_loss, adam, next(batches),
                               devices)
            if step == 0 or step in args.pretrain_steps:
                d2l.save_bert(checkpoint, net, vocab)
                mlm_acc, nsp_acc = d2l.evaluate_bert(net, held_out_iter,
                                                     devices[0])
                snli_acc = finetune(checkpoint, train_iter, test_iter,
                                    devices, args.finetune_steps, args.lr)
                rows.append(f'| {step:,} | {mlm_acc:.3f} | {nsp_acc:.3f} | '
                            f'{snli_acc:.3f} |')
                print(rows[-1], flush=True)
    print('| pretraining steps | held-out MLM accuracy | held-out NSP '
          'accuracy | SNLI test accuracy |')
    print('|---:|---:|---:|---:|')
    print('\n'.join(rows))


if __name__ == '__main__':
    main()
