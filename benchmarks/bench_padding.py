"""Bound the padding lever: the most that skipping padding could speed up.

The chapter pads every pair to 64 positions and 10 MLM prediction slots; on
the offline text about 29% of the positions and 31% of the slots are padding,
and every layer computes on them. This measures, in one process, the
library's training step (``train_step`` on the hybridized
``PretrainingLoss``, the chapter's configuration, batch 512) on

* padded batches: 64 positions and 10 slots per pair;
* unpadded batches: as many positions and slots as the pairs of the text have
  on average, with nothing padded -- the compute of perfectly packed batches,
  which no implementation of padding skipping can undercut;
* the two shapes alternating from step to step, as batches trimmed to their
  longest pair would change shape: what each change of shape costs a graph
  hybridized with static memory.

Rounds of ``--steps`` steps alternate between the three; the fastest round of
each is reported. It also reports what sorting a whole epoch by length would
leave: the mean length of its batches' longest pairs. Run it with and without
OMP_NUM_THREADS set:

    python benchmarks/bench_padding.py [--vocab-size 0] [--rounds 3] [--steps 4]
    OMP_NUM_THREADS=$(nproc) python benchmarks/bench_padding.py
"""

import argparse
import math
import os
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
NUM_SLOTS = 10  # MLM prediction slots per pair at MAX_LEN


def text_lengths():
    """Valid lengths and real MLM slots of the offline text's pairs, and its vocab size."""
    with tempfile.TemporaryDirectory() as data_dir:
        write_train_file(default_text(), data_dir)
        dataset = wiki_dataset(d2l, data_dir, MAX_LEN)
    examples = [dataset[i] for i in range(len(dataset))]
    lengths = onp.array([float(x[2]) for x in examples])
    slots = onp.array([float(x[4].sum()) for x in examples])
    return lengths, slots, len(dataset.vocab)


def sorted_batch_lengths(lengths):
    """Mean longest length of the batches of one epoch sorted by length."""
    ordered = onp.sort(lengths)
    return onp.mean([ordered[i:i + BATCH_SIZE].max()
                     for i in range(0, len(ordered), BATCH_SIZE)])


def unpadded_batch(seq_len, num_slots, vocab_size):
    """A batch of 512 pairs with seq_len positions and num_slots slots, all real."""
    B = BATCH_SIZE
    tokens = np.random.randint(5, vocab_size, (B, seq_len)).astype('int32')
    segments = (np.arange(seq_len) >= seq_len // 2).astype('int32') * np.ones(
        (B, 1), dtype='int32')                                   # (B, T)
    valid_lens = np.full((B,), seq_len, dtype='float32')
    pred_positions = np.random.randint(1, seq_len, (B, num_slots)).astype('int32')
    mlm_weights = np.ones((B, num_slots))
    mlm_labels = np.random.randint(5, vocab_size, (B, num_slots)).astype('int32')
    nsp_labels = np.random.randint(0, 2, (B,)).astype('int32')
    return (tokens, segments, valid_lens, pred_positions, mlm_weights,
            mlm_labels, nsp_labels)


def timed_steps(step, batches):
    """Seconds to train on the batches one after the other."""
    npx.waitall()
    tic = time.perf_counter()
    for batch in batches:
        mlm, _ = step(batch)[0]
        float(mlm)
    npx.waitall()  # the last step's backward pass and update
    return time.perf_counter() - tic


def main():
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('--vocab-size', type=int, default=0,
                        help="the model's vocabulary size (0: the text's)")
    parser.add_argument('--rounds', type=int, default=3)
    parser.add_argument('--steps', type=int, default=4)
    args = parser.parse_args()
    seed_all(0)
    lengths, slots, text_vocab = text_lengths()
    vocab_size = args.vocab_size or text_vocab
    seq_len, num_slots = round(lengths.mean()), round(slots.mean())
    print(f'{len(lengths)} pairs: on average {lengths.mean():.1f} of {MAX_LEN} '
          f'positions and {slots.mean():.2f} of {NUM_SLOTS} MLM slots are real; '
          f'sorting an epoch by length, its batches\' longest pairs average '
          f'{sorted_batch_lengths(lengths):.1f} positions')
    net = d2l.BERTModel(vocab_size, **CONFIG)
    net.initialize(init.Xavier())
    step = our_train_step(d2l, net, vocab_size, [npx.cpu()])
    padded = unpadded_batch(MAX_LEN, NUM_SLOTS, vocab_size)
    unpadded = unpadded_batch(seq_len, num_slots, vocab_size)
    runs = {f'padded ({MAX_LEN} positions, {NUM_SLOTS} slots)':
            [padded] * args.steps,
            f'unpadded ({seq_len} positions, {num_slots} slots)':
            [unpadded] * args.steps,
            'the two alternating': [padded, unpadded] * math.ceil(args.steps / 2)}
    for batches in runs.values():  # builds the graph for both shapes
        timed_steps(step, batches[:2])
    best = dict.fromkeys(runs, float('inf'))
    for _ in range(args.rounds):
        for name, batches in runs.items():
            best[name] = min(best[name],
                             timed_steps(step, batches) / len(batches))
    (padded_s, unpadded_s, alternating_s) = best.values()
    print(f'OMP_NUM_THREADS={os.environ.get("OMP_NUM_THREADS", "unset")}, '
          f'model vocab {vocab_size}, batch {BATCH_SIZE}, fastest of '
          f'{args.rounds} rounds of {args.steps} steps')
    for name, seconds in list(best.items())[:2]:
        print(f'  {name:>36}: {seconds:6.3f} s/step {BATCH_SIZE / seconds:7.1f} '
              f'pairs/s  {padded_s / seconds:5.2f}x')
    change = alternating_s - (padded_s + unpadded_s) / 2
    print(f'  {"alternating, cost of a shape change":>36}: '
          f'{change * 1e3:+6.0f} ms/step')


if __name__ == '__main__':
    main()
