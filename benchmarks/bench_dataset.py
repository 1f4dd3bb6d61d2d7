"""Time our BERT pretraining dataset against d2l 0.17.6's on the same text.

Each implementation runs in its own process: ours with the project's venv,
d2l 0.17.6's with benchmarks/.venv-d2l0176 (create it with
benchmarks/setup_d2l0176.sh). Both see the same text, the same paragraphs and
the same seeds, and report:

* build: constructing ``_WikiTextDataset`` from paragraphs (best of --repeats);
* load: reading ``wiki.train.tokens`` with the library's ``_read_wiki`` and
  building the dataset, as ``load_data_wiki`` does after the download;
* batches: one shuffled epoch through ``gluon.data.DataLoader``;
* memory: the process's peak resident set size (ru_maxrss), after importing
  the libraries and at the end.

The text is WikiText-2's validation and test splits together, from
data (the project's own copies).

    python benchmarks/bench_dataset.py [--text FILE]
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


def read_paragraphs(path):
    """Split lines into lowercase sentences at ' . '; keep those with two."""
    with open(path, encoding='utf-8') as f:
        paragraphs = [line.strip().lower().split(' . ') for line in f]
    return [p for p in paragraphs if len(p) >= 2]


def worker(data_dir, max_len, batch_size, repeats, seed):
    """Measure one implementation; print the results as JSON."""
    from d2l import mxnet as d2l
    from mxnet import gluon, npx
    npx.set_np()  # d2l 0.17.6 leaves this to its notebooks
    result = {'mb_after_import': peak_mb()}
    seed_all(seed)
    tic = time.perf_counter()
    dataset = wiki_dataset(d2l, data_dir, max_len)
    result['load_s'] = time.perf_counter() - tic
    del dataset
    paragraphs = read_paragraphs(pathlib.Path(data_dir, 'wiki.train.tokens'))
    builds = []
    for _ in range(repeats):
        seed_all(seed)
        tic = time.perf_counter()
        dataset = getattr(d2l, 'WikiTextDataset', None) or d2l._WikiTextDataset
        dataset = dataset(paragraphs, max_len)
        builds.append(time.perf_counter() - tic)
    result['build_s'] = min(builds)
    loader = gluon.data.DataLoader(dataset, batch_size, shuffle=True)
    tic, num_batches = time.perf_counter(), 0
    for batch in loader:
        batch[0].wait_to_read()
        num_batches += 1
    result['ms_per_batch'] = (time.perf_counter() - tic) / num_batches * 1e3
    result.update(paragraphs=len(paragraphs), examples=len(dataset),
                  vocab=len(dataset.vocab), library=d2l.__file__,
                  mb_peak=peak_mb())
    print(json.dumps(result))


def main():
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('--text', type=pathlib.Path, nargs='+',
                        help='text files in WikiText format, concatenated')
    parser.add_argument('--max-len', type=int, default=64)
    parser.add_argument('--batch-size', type=int, default=512)
    parser.add_argument('--repeats', type=int, default=3)
    parser.add_argument('--seed', type=int, default=0)
    parser.add_argument('--worker', metavar='DATA_DIR', help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        return worker(args.worker, args.max_len, args.batch_size,
                      args.repeats, args.seed)
    texts = args.text or default_text()
    with tempfile.TemporaryDirectory() as data_dir:
        write_train_file(texts, data_dir)
        worker_args = [data_dir, '--max-len', str(args.max_len),
                       '--batch-size', str(args.batch_size), '--repeats',
                       str(args.repeats), '--seed', str(args.seed)]
        results = {name: run_worker(name, __file__, worker_args)
                   for name in PYTHONS}
    ours, base = results['ours'], results['d2l 0.17.6']
    print(f'text: {" + ".join(str(p) for p in texts)}')
    print(f'{ours["paragraphs"]} paragraphs, max_len={args.max_len}, '
          f'batch_size={args.batch_size}, seed={args.seed}')
    rows = [('build from paragraphs (s)', 'build_s'),
            ('load from file (s)', 'load_s'),
            ('epoch of batches (ms/batch)', 'ms_per_batch'),
            ('peak RSS after imports (MB)', 'mb_after_import'),
            ('peak RSS at the end (MB)', 'mb_peak')]
    print(f'{"":30}{"ours":>12}{"d2l 0.17.6":>12}{"d2l / ours":>12}')
    for label, key in rows:
        print(f'{label:30}{ours[key]:12.3f}{base[key]:12.3f}'
              f'{base[key] / ours[key]:11.1f}x')
    for key in ['examples', 'vocab']:
        print(f'{key:30}{ours[key]:12d}{base[key]:12d}')
    print(f'speedup of building the dataset: '
          f'{base["build_s"] / ours["build_s"]:.1f}x')


if __name__ == '__main__':
    main()
