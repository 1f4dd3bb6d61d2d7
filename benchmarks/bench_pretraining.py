"""Time our BERT pretraining step against d2l 0.17.6's on the same text.

Each implementation runs in its own process: ours with the project's venv,
d2l 0.17.6's with benchmarks/.venv-d2l0176 (create it with
benchmarks/setup_d2l0176.sh). Both build their own dataset from the same
text with the same seeds, and train the chapter's configuration (2 layers, 128
hidden units, 2 heads, FFN 256, dropout 0.2, batch 512, max_len 64) with Adam
on all devices (the CPU here):

* ours: the library's ``train_step`` on the hybridized ``PretrainingLoss``
  with its ``CrossEntropyLoss``, reading each step's losses one step late,
  as ``train_bert`` does;
* d2l 0.17.6: its ``_get_batch_loss_bert`` in the loop of its pretraining
  section, which reads every shard's losses right after its step.

After ``--warmup`` steps, the wall-clock time of ``--steps`` more steps gives
sentence pairs per second; each process also reports its peak resident set
size (ru_maxrss).

The output layer of the MLM head and its loss grow with the vocabulary. The
full training split gives a vocabulary of about 20,000 tokens, the text
available offline (validation and test splits) one of about 7,000.
``--vocab-size 20256`` builds both models with the full split's vocabulary
size (as d2l reports it) while they train on the offline text, whose token ids
are a subset: the same arithmetic as the chapter's run.

    python benchmarks/bench_pretraining.py [--steps 10] [--warmup 3]
                                           [--vocab-size N]
"""

import argparse
import json
import pathlib
import sys
import tempfile
import time

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parent))
from common import (PYTHONS, default_text, peak_mb, run_worker, wiki_dataset,  # noqa: E402
                    seed_all, write_train_file)

MAX_LEN, BATCH_SIZE = 64, 512
CONFIG = dict(num_hiddens=128, ffn_num_hiddens=256, num_heads=2,
              num_layers=2, dropout=0.2)


def endless(loader):
    """Go through the data loader again and again."""
    while True:
        yield from loader


def our_steps(d2l, net, loss, vocab_size, devices):
    """Return a step function built from the project's library."""
    from mxnet import gluon
    step_loss = d2l.PretrainingLoss(net, loss, vocab_size)
    step_loss.hybridize(static_alloc=True, static_shape=True)
    trainer = gluon.Trainer(net.collect_params(), 'adam',
                            {'learning_rate': 1e-3})
    previous = []

    def step(batch):
        losses = d2l.train_step(step_loss, trainer, batch, devices)
        for mlm, nsp in previous:  # read one step late, as train_bert does
            float(mlm), float(nsp)
        previous[:] = losses
    return step


def d2l_steps(d2l, net, loss, vocab_size, devices):
    """Return a step function as d2l 0.17.6's pretraining section runs it."""
    from mxnet import autograd, gluon
    trainer = gluon.Trainer(net.collect_params(), 'adam',
                            {'learning_rate': 1e-3})

    def step(batch):
        shards = [gluon.utils.split_and_load(x, devices, even_split=False)
                  for x in batch]
        with autograd.record():
            mlm_ls, nsp_ls, ls = d2l._get_batch_loss_bert(
                net, loss, vocab_size, *shards)
        for shard_loss in ls:
            shard_loss.backward()
        trainer.step(1)
        sum(float(x) for x in mlm_ls), sum(float(x) for x in nsp_ls)
    return step


def worker(data_dir, steps, warmup, seed, ours, vocab_size):
    """Measure one implementation; print the results as JSON."""
    from d2l import mxnet as d2l
    from mxnet import gluon, init, npx
    npx.set_np()
    seed_all(seed)
    dataset = wiki_dataset(d2l, data_dir, MAX_LEN)
    loader = endless(gluon.data.DataLoader(dataset, BATCH_SIZE, shuffle=True))
    vocab_size = max(vocab_size, len(dataset.vocab))
    net = d2l.BERTModel(vocab_size, **CONFIG)
    devices = d2l.try_all_gpus()
    net.initialize(init.Xavier(), ctx=devices)
    make_step = our_steps if ours else d2l_steps
    loss = d2l.CrossEntropyLoss() if ours else gluon.loss.SoftmaxCELoss()
    step = make_step(d2l, net, loss, vocab_size, devices)
    for _ in range(warmup):
        step(next(loader))
    npx.waitall()
    tic = time.perf_counter()
    for _ in range(steps):
        step(next(loader))
    npx.waitall()
    seconds = time.perf_counter() - tic
    print(json.dumps({'pairs_per_s': steps * BATCH_SIZE / seconds,
                      's_per_step': seconds / steps, 'mb_peak': peak_mb(),
                      'vocab': len(dataset.vocab), 'model_vocab': vocab_size,
                      'devices': str(devices)}))


def main():
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('--text', type=pathlib.Path, nargs='+',
                        help='text files in WikiText format, concatenated')
    parser.add_argument('--steps', type=int, default=10)
    parser.add_argument('--warmup', type=int, default=3)
    parser.add_argument('--seed', type=int, default=0)
    parser.add_argument('--vocab-size', type=int, default=0,
                        help="the models' vocabulary size (default: the data's)")
    parser.add_argument('--worker', metavar='DATA_DIR', help=argparse.SUPPRESS)
    parser.add_argument('--ours', action='store_true', help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        return worker(args.worker, args.steps, args.warmup, args.seed,
                      args.ours, args.vocab_size)
    texts = args.text or default_text()
    with tempfile.TemporaryDirectory() as data_dir:
        write_train_file(texts, data_dir)
        worker_args = [data_dir, '--steps', str(args.steps), '--warmup',
                       str(args.warmup), '--seed', str(args.seed),
                       '--vocab-size', str(args.vocab_size)]
        results = {name: run_worker(name, __file__, worker_args
                                    + (['--ours'] if name == 'ours' else []))
                   for name in PYTHONS}
    ours, base = results['ours'], results['d2l 0.17.6']
    print(f'text: {" + ".join(str(p) for p in texts)}')
    print(f'data vocab {ours["vocab"]} (ours) / {base["vocab"]} (d2l), '
          f'model vocab {ours["model_vocab"]} / {base["model_vocab"]}, '
          f'devices {ours["devices"]}, {args.warmup} warm-up + {args.steps} '
          f'timed steps of {BATCH_SIZE} pairs, max_len {MAX_LEN}')
    print(f'{"":28}{"ours":>12}{"d2l 0.17.6":>12}')
    for label, key in [('sentence pairs/sec', 'pairs_per_s'),
                       ('seconds/step', 's_per_step'),
                       ('peak RSS (MB)', 'mb_peak')]:
        print(f'{label:28}{ours[key]:12.1f}{base[key]:12.1f}')
    print(f'speedup (pairs/sec, ours / d2l 0.17.6): '
          f'{ours["pairs_per_s"] / base["pairs_per_s"]:.2f}x')
    print(f'peak memory (ours / d2l 0.17.6): '
          f'{ours["mb_peak"] / base["mb_peak"]:.2f}')


if __name__ == '__main__':
    main()
