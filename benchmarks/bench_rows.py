"""Time packed rows of 1.5 * max_len and of max_len against rows of 2 * max_len.

The chapter packs its pairs into rows of 1.5 * max_len positions (96 for
max_len 64); it packed into rows of 2 * max_len before. Shorter rows give
each query fewer keys to attend to, and can pack as tightly. On the
benchmark's text with d2l 0.17.6's configuration (max_len 64, 32,768
positions per step, dropout 0 as the chapter's recipe), this prints the share
of positions that ``d2l.assign_rows`` fills for several row lengths, then
times steps of the library's ``train_step`` on rows of 128, of 96 (341 rows,
32,736 positions) and of 64 (512 rows) in one process, in rounds that
alternate between the layouts, and prints each round's ratio to rows of 128.

    python benchmarks/bench_rows.py [--vocab-size 0] [--rounds 4] [--steps 10]
    OMP_NUM_THREADS=$(nproc) python benchmarks/bench_rows.py
"""

import argparse
import pathlib
import sys
import tempfile
import time

import numpy as onp
from mxnet import init, np, npx

from d2l import mxnet as d2l

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parent))
from common import (BATCH_SIZE, CONFIG, MAX_LEN, default_text,  # noqa: E402
                    our_train_step, seed_all, wiki_dataset, write_train_file)

npx.set_np()
ROW_LENS = (2 * MAX_LEN, 3 * MAX_LEN // 2, MAX_LEN)


def print_fill(dataset):
    """Print the share of positions filled by rows of several lengths."""
    lengths = dataset.arrays[2].astype(onp.int64)
    num_preds = dataset.arrays[4].sum(axis=1).astype(onp.int64)
    print(f'{len(lengths)} pairs; one pair per row of {MAX_LEN} fills '
          f'{lengths.sum() / (len(lengths) * MAX_LEN):.1%} of the positions')
    for row_len in sorted(ROW_LENS):
        _, num_rows = d2l.assign_rows(lengths, num_preds, row_len,
                                      round(0.15 * row_len))
        print(f'  packed rows of {row_len}: {num_rows} rows, '
              f'{lengths.sum() / (num_rows * row_len):.1%} filled')


def batches(dataset, row_len, num_batches):
    """The first num_batches batches of a shuffled packing into row_len."""
    arrays = d2l.pack_examples(dataset.arrays, dataset.vocab, row_len)
    num_rows = BATCH_SIZE * MAX_LEN // row_len  # as many positions a step
    order = onp.random.permutation(len(arrays[0]))
    return [[np.array(a[order[i:i + num_rows]]) for a in arrays]
            for i in range(0, num_batches * num_rows, num_rows)]


def pairs_per_second(step, batches):
    """Pairs per second of the batches after the first two (warm-up)."""
    for batch in batches[:2]:
        [float(x) for losses in step(batch) for x in losses]
    npx.waitall()
    tic, num_pairs = time.perf_counter(), 0
    for batch in batches[2:]:
        [float(x) for losses in step(batch) for x in losses]
        num_pairs += d2l.count_pairs(batch)
    npx.waitall()
    return num_pairs / (time.perf_counter() - tic)


def main():
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('--vocab-size', type=int, default=0,
                        help="the model's vocabulary size (0: the data's)")
    parser.add_argument('--rounds', type=int, default=4)
    parser.add_argument('--steps', type=int, default=10)
    parser.add_argument('--seed', type=int, default=0)
    args = parser.parse_args()
    seed_all(args.seed)
    with tempfile.TemporaryDirectory() as data_dir:
        write_train_file(default_text(), data_dir)
        dataset = wiki_dataset(d2l, data_dir, MAX_LEN)
    print_fill(dataset)
    vocab_size = max(args.vocab_size, len(dataset.vocab))
    net = d2l.BERTModel(vocab_size, **{**CONFIG, 'dropout': 0.0})
    net.initialize(init.Xavier())
    layouts = {r: (our_train_step(d2l, net, vocab_size, [npx.cpu()]),
                   batches(dataset, r, args.steps + 2)) for r in ROW_LENS}
    results = {r: [] for r in ROW_LENS}
    for _ in range(args.rounds):
        for row_len, (step, layout) in layouts.items():
            results[row_len].append(pairs_per_second(step, layout))
    print(f'model vocab {vocab_size}, {args.steps} timed steps per round')
    for row_len, values in results.items():
        print(f'  rows of {row_len}: ' + ' / '.join(f'{v:.0f}' for v in values)
              + ' sentence pairs/s')
    long = ROW_LENS[0]
    for short in ROW_LENS[1:]:
        print(f'  rows of {short} against rows of {long}: ' + ' / '.join(
            f'{s / t:.2f}x' for s, t in zip(results[short], results[long])))


if __name__ == '__main__':
    main()
