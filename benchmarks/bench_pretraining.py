"""Time our BERT pretraining step against d2l 0.17.6's on the same text.

Each implementation runs in its own process: ours with the project's venv,
d2l 0.17.6's with benchmarks/.venv-d2l0176 (create it with
benchmarks/setup_d2l0176.sh). Both build their own dataset from the same
text with the same seeds, and train the configuration of d2l 0.17.6's chapter (2 layers, 128
hidden units, 2 heads, FFN 256, dropout 0.2, batch 512, max_len 64) with Adam
on all devices (the CPU here):

* ours: the library's ``train_step`` on the hybridized ``PretrainingLoss``
  with its ``CrossEntropyLoss``, reading each step's losses right after it,
  as ``train_bert`` does, on batches of its ``WikiTextLoader``: once packed
  (two thirds as many rows, 1.5 times as long, as ``load_data_wiki(...,
  packed=True)`` gives them) and once one pair per row; and once more packed
  without dropout, as the chapter's recipe (``d2l.PRETRAINING``) trains;
* d2l 0.17.6: its ``_get_batch_loss_bert`` in the loop of its pretraining
  section, which reads every shard's losses right after its step.

After ``--warmup`` steps, the wall-clock time of ``--steps`` more steps and
the sentence pairs their batches held give sentence pairs per second; each
process also reports its peak resident set size (ru_maxrss).

The output layer of the MLM head and its loss grow with the vocabulary. The
full training split gives a vocabulary of about 20,000 tokens, the text
available offline (validation and test splits) one of about 7,000.
``--vocab-size 20256`` builds both models with the full split's vocabulary
size (as d2l reports it) while they train on the offline text, whose token ids
are a subset: the same arithmetic as the chapter's run.

By default it measures four settings in one run: the offline text's own
vocabulary and 20,256, each with MXNet's default threads (OMP_NUM_THREADS
unset) and with OMP_NUM_THREADS set to the number of CPUs, on both sides.
``--profile`` adds a profile of one packed step of ours in each setting, operator
by operator (with bulk execution off, so a little slower than the timed
steps).

    python benchmarks/bench_pretraining.py [--steps 10] [--warmup 3]
        [--vocab-size 0 20256] [--threads default N] [--profile]
"""

import argparse
import json
import os
import pathlib
import sys
import tempfile
import time

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parent))
from common import (BATCH_SIZE, CONFIG, MAX_LEN, default_text,  # noqa: E402
                    our_train_step, peak_mb, run_worker, seed_all, wiki_dataset,
                    write_train_file)

ROW_LEN = 3 * MAX_LEN // 2  # of the packed rows WikiTextLoader makes


def endless(loader):
    """Go through the data loader again and again."""
    while True:
        yield from loader


def our_steps(d2l, net, vocab_size, devices):
    """Return a step function built from the project's library."""
    train_step = our_train_step(d2l, net, vocab_size, devices)

    def step(batch):
        for mlm, nsp in train_step(batch):
            float(mlm), float(nsp)
    return step


def d2l_steps(d2l, net, vocab_size, devices):
    """Return a step function as d2l 0.17.6's pretraining section runs it."""
    from mxnet import autograd, gluon
    loss = gluon.loss.SoftmaxCELoss()
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


def count_pairs(batch):
    """Sentence pairs in a batch of one pair per row (7 arrays) or packed (10)."""
    return len(batch[0]) if len(batch) == 7 else int(batch[9].sum())


def batches(d2l, dataset, packed):
    """Endless training batches: ours from its loader, d2l's from Gluon's."""
    from mxnet import gluon
    if hasattr(d2l, 'WikiTextLoader'):  # ours
        return endless(d2l.WikiTextLoader(dataset, BATCH_SIZE, True, packed))
    return endless(gluon.data.DataLoader(dataset, BATCH_SIZE, shuffle=True))


def worker(data_dir, steps, warmup, seed, ours, packed, dropout, vocab_size,
           profile):
    """Measure one implementation; print the results as JSON."""
    from d2l import mxnet as d2l
    from mxnet import init, npx
    npx.set_np()
    seed_all(seed)
    dataset = wiki_dataset(d2l, data_dir, MAX_LEN)
    loader = batches(d2l, dataset, packed)
    vocab_size = max(vocab_size, len(dataset.vocab))
    net = d2l.BERTModel(vocab_size, **{**CONFIG, 'dropout': dropout})
    devices = d2l.try_all_gpus()
    net.initialize(init.Xavier(), ctx=devices)
    make_step = our_steps if ours else d2l_steps
    step = make_step(d2l, net, vocab_size, devices)
    for _ in range(warmup):
        step(next(loader))
    npx.waitall()
    if profile:
        print(json.dumps(profile_step(step, next(loader))))
        return
    tic, num_pairs = time.perf_counter(), 0
    for _ in range(steps):
        batch = next(loader)
        step(batch)
        num_pairs += count_pairs(batch)
    npx.waitall()
    seconds = time.perf_counter() - tic
    print(json.dumps({'pairs_per_s': num_pairs / seconds,
                      's_per_step': seconds / steps, 'mb_peak': peak_mb(),
                      'vocab': len(dataset.vocab), 'model_vocab': vocab_size,
                      'devices': str(devices)}))


def profile_step(step, batch):
    """Milliseconds of each operator in one step, largest first."""
    import mxnet as mx
    with tempfile.TemporaryDirectory() as folder:
        # MXNet replaces its trace file: never point it at /dev/null, which
        # a process run as root would turn into a regular file
        mx.profiler.set_config(profile_all=True, aggregate_stats=True,
                               filename=os.path.join(folder, 'trace.json'))
        mx.profiler.set_state('run')
        tic = time.perf_counter()
        step(batch)
        mx.nd.waitall()
        seconds = time.perf_counter() - tic
        mx.profiler.set_state('stop')
        stats = mx.profiler.dumps(format='json')
    ops = json.loads(stats)['Time']['operator']
    ops = sorted(((name, v['Total']) for name, v in ops.items()),
                 key=lambda x: -x[1])
    return {'ms_step': seconds * 1e3, 'ops': ops, 'num_pairs': count_pairs(batch)}


# the runs of one setting: (name, implementation, its worker's flags); the
# first three train the configuration of d2l 0.17.6's chapter, dropout 0.2
# included, the fourth ours (PRETRAINING trains without dropout)
RUNS = (('packed', 'ours', ['--ours', '--packed']),
        ('padded', 'ours', ['--ours']),
        ('d2l 0.17.6', 'd2l 0.17.6', []),
        ('packed, dropout 0', 'ours', ['--ours', '--packed', '--dropout', '0']))


def compare(data_dir, args, vocab_size, threads):
    """Run ours, packed and padded, and d2l 0.17.6 in one setting."""
    worker_args = [data_dir, '--steps', str(args.steps), '--warmup',
                   str(args.warmup), '--seed', str(args.seed),
                   '--vocab-size', str(vocab_size)]
    return {name: run_worker(python, __file__, worker_args + flags, threads)
            for name, python, flags in RUNS}


MATRIX_PRODUCTS = ('FullyConnected', '_backward_FullyConnected', 'batch_dot')


def print_profile(data_dir, args, vocab_size, threads, d2l_pairs_per_s,
                  top=12):
    """Profile one step of ours, operator by operator (no bulk execution).

    Then compare the matrix products' time with the step time 2.5x d2l
    0.17.6's pairs/s would allow."""
    result = run_worker('ours', __file__, [
        data_dir, '--steps', '1', '--warmup', str(args.warmup), '--seed',
        str(args.seed), '--vocab-size', str(vocab_size), '--ours', '--packed',
        '--profile'], threads, {'MXNET_EXEC_BULK_EXEC_TRAIN': '0'})
    print(f'\nprofile of one packed step of ours, model vocab {vocab_size or "data"}, '
          f'OMP_NUM_THREADS={threads or "unset"}: {result["ms_step"]:.0f} ms '
          'in all (profiled, operator by operator)')
    for name, ms in result['ops'][:top]:
        print(f'  {name:32}{ms:9.1f} ms')
    rest = sum(ms for _, ms in result['ops'][top:])
    print(f'  {"all other operators":32}{rest:9.1f} ms')
    products = sum(ms for name, ms in result['ops'] if name in MATRIX_PRODUCTS)
    budget = result['num_pairs'] / (2.5 * d2l_pairs_per_s) * 1e3
    print(f'  matrix products ({", ".join(MATRIX_PRODUCTS)}): {products:.0f} ms;'
          f' everything else: {result["ms_step"] - products:.0f} ms.\n'
          f'  At 2.5x d2l 0.17.6 ({d2l_pairs_per_s:.1f} pairs/s above) a step '
          f'may take {budget:.0f} ms, which leaves '
          f'{budget - products:.0f} ms besides the matrix products.')


def print_setting(results, threads):
    """Print each run of one setting: pairs/s, ratio to d2l, peak memory."""
    base = results['d2l 0.17.6']
    print(f'\nmodel vocab {results["packed"]["model_vocab"]} (d2l '
          f'{base["model_vocab"]}), OMP_NUM_THREADS={threads or "unset"}')
    for name, r in results.items():
        ratio = r['pairs_per_s'] / base['pairs_per_s']
        print(f'  {name:20}{r["pairs_per_s"]:8.1f} sentence pairs/s'
              f'{ratio:7.2f}x d2l 0.17.6  peak RSS {r["mb_peak"]:5.0f} MB',
              flush=True)


def main():
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('--text', type=pathlib.Path, nargs='+',
                        help='text files in WikiText format, concatenated')
    parser.add_argument('--steps', type=int, default=10)
    parser.add_argument('--warmup', type=int, default=3)
    parser.add_argument('--seed', type=int, default=0)
    parser.add_argument('--vocab-size', type=int, nargs='+', default=[0, 20256],
                        help="the models' vocabulary sizes (0: the data's)")
    parser.add_argument('--threads', nargs='+',
                        default=['default', str(os.cpu_count())],
                        help="OMP_NUM_THREADS of both sides ('default': unset)")
    parser.add_argument('--profile', action='store_true',
                        help='also profile one step of ours in each setting')
    parser.add_argument('--worker', metavar='DATA_DIR', help=argparse.SUPPRESS)
    parser.add_argument('--ours', action='store_true', help=argparse.SUPPRESS)
    parser.add_argument('--packed', action='store_true', help=argparse.SUPPRESS)
    parser.add_argument('--dropout', type=float, default=CONFIG['dropout'],
                        help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        return worker(args.worker, args.steps, args.warmup, args.seed,
                      args.ours, args.packed, args.dropout,
                      args.vocab_size[0], args.profile)
    texts = args.text or default_text()
    settings = [(v, None if t == 'default' else t)
                for v in args.vocab_size for t in args.threads]
    print(f'text: {" + ".join(str(p) for p in texts)}; {args.warmup} warm-up '
          f'+ {args.steps} timed steps of {BATCH_SIZE} x {MAX_LEN} positions '
          f'(packed: {BATCH_SIZE * MAX_LEN // ROW_LEN} rows of {ROW_LEN}), '
          f'{os.cpu_count()} CPUs')
    with tempfile.TemporaryDirectory() as data_dir:
        write_train_file(texts, data_dir)
        d2l_pairs_per_s = {}
        for vocab_size, threads in settings:
            r = compare(data_dir, args, vocab_size, threads)
            base = r['d2l 0.17.6']['pairs_per_s']
            d2l_pairs_per_s[vocab_size, threads] = base
            print_setting(r, threads)
        if args.profile:
            for vocab_size, threads in settings:
                print_profile(data_dir, args, vocab_size, threads,
                              d2l_pairs_per_s[vocab_size, threads])


if __name__ == '__main__':
    main()
