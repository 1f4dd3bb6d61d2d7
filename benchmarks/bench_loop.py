"""Time when the training loop reads its losses: right away or one step late.

``train_bert`` reads each step's losses as soon as it has queued the step,
which waits for the step's forward pass only: its backward pass and update
still run while Python queues the next step. Reading them one step late
instead lets Python queue the next step before this one's forward pass is
done. Both loops wait for all work at the end. On the
pretraining text, with the chapter's configuration (batch 512, ``max_len``
64) and the library's ``train_step`` on the hybridized ``PretrainingLoss``,
this measures in one process

* how long Python takes to queue one step (``train_step`` returning, with the
  device idle);
* seconds per step of both loops, in rounds that alternate between them; the
  fastest round of each is reported.

Run it with and without OMP_NUM_THREADS set:

    python benchmarks/bench_loop.py [--vocab-size 0] [--rounds 3] [--steps 6]
    OMP_NUM_THREADS=$(nproc) python benchmarks/bench_loop.py
"""

import argparse
import os
import pathlib
import sys
import tempfile
import time

from mxnet import gluon, init, npx

from d2l import mxnet as d2l

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parent))
from common import (BATCH_SIZE, CONFIG, MAX_LEN, default_text,  # noqa: E402
                    our_train_step, seed_all, wiki_dataset, write_train_file)

npx.set_np()


def right_away(step, batches):
    """Seconds per step when each step's losses are read once it is queued."""
    npx.waitall()
    tic = time.perf_counter()
    for batch in batches:
        [float(x) for x in step(batch)[0]]
    npx.waitall()  # the last step's backward pass and update
    return (time.perf_counter() - tic) / len(batches)


def one_step_late(step, batches):
    """Seconds per step when each step's losses are read after the next is queued."""
    npx.waitall()
    tic = time.perf_counter()
    previous = []
    for batch in batches:
        terms = step(batch)
        [float(x) for x in previous]
        previous = terms[0]
    [float(x) for x in previous]
    npx.waitall()
    return (time.perf_counter() - tic) / len(batches)


def queueing_seconds(step, batches):
    """Fastest time for Python to queue one step while the device is idle."""
    fastest = float('inf')
    for batch in batches:
        npx.waitall()
        tic = time.perf_counter()
        step(batch)
        fastest = min(fastest, time.perf_counter() - tic)
    npx.waitall()
    return fastest


def main():
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('--vocab-size', type=int, default=0,
                        help="the model's vocabulary size (0: the text's)")
    parser.add_argument('--rounds', type=int, default=3)
    parser.add_argument('--steps', type=int, default=6)
    args = parser.parse_args()
    seed_all(0)
    with tempfile.TemporaryDirectory() as data_dir:
        write_train_file(default_text(), data_dir)
        dataset = wiki_dataset(d2l, data_dir, MAX_LEN)
    loader = gluon.data.DataLoader(dataset, BATCH_SIZE, shuffle=True)
    batches = [batch for batch, _ in zip(loader, range(args.steps))]
    vocab_size = args.vocab_size or len(dataset.vocab)
    net = d2l.BERTModel(vocab_size, **CONFIG)
    net.initialize(init.Xavier())
    step = our_train_step(d2l, net, vocab_size, [npx.cpu()])
    right_away(step, batches[:2])  # builds the graph
    queueing = queueing_seconds(step, batches)
    loops = {'read right away (train_bert)': right_away,
             'read one step late': one_step_late}
    best = dict.fromkeys(loops, float('inf'))
    for _ in range(args.rounds):
        for name, loop in loops.items():
            best[name] = min(best[name], loop(step, batches))
    first = best['read right away (train_bert)']
    print(f'OMP_NUM_THREADS={os.environ.get("OMP_NUM_THREADS", "unset")}, '
          f'model vocab {vocab_size}, batch {BATCH_SIZE}, fastest of '
          f'{args.rounds} rounds of {args.steps} steps')
    print(f'  queueing one step takes Python {queueing * 1e3:.1f} ms')
    for name, seconds in best.items():
        print(f'  {name:>28}: {seconds:6.3f} s/step {BATCH_SIZE / seconds:7.1f} '
              f'pairs/s  {first / seconds:5.2f}x')


if __name__ == '__main__':
    main()
