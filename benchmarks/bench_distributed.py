"""Throughput and communication of parameter-server jobs of 1, 2 and 4 workers.

Each job runs on this machine: a scheduler, one server and N workers, all
separate processes talking over TCP on 127.0.0.1 (``d2l.launch.run_job``). Every
worker trains the chapter's BERT (``d2l.SMALL_BERT``) on its own shard of
the text with the library's ``train_step`` given the job's totals,
``--batch-per-worker`` pairs of at most 64 tokens per step (so the job's batch
grows with N). After ``--warmup`` steps, worker 0 times ``--steps`` steps:
the job's sentence pairs per second. Then every worker times ``--rounds``
bare gradient exchanges (``trainer.allreduce_grads``: push every gradient,
pull the sums), the communication one step pays; and counts the bytes it
pushes, which it pulls back too: 4 per parameter. A row "0" runs the same
steps in one process without any kvstore, for comparison.

What a 2-core machine can tell: the cost of the exchange itself (serializing,
copying through the loopback interface, the server's sums, the barrier), and
how it grows with the number of workers that share one server. What it cannot
tell: any speed-up. All processes share the same two cores, so N workers
compute N shares one after the other at best, and the job's pairs/s cannot
exceed one worker's; a real cluster gives each worker its own machine, and
its network is slower than loopback.

    python benchmarks/bench_distributed.py [--workers 0 1 2 4] [--steps 10]
"""

import argparse
import json
import pathlib
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parent))
from common import default_text, write_train_file  # noqa: E402

MAX_LEN = 64


def worker(data_dir, out, batch_size, warmup, steps, rounds, distributed):
    """Train, time steps and bare exchanges; worker 0 writes the figures."""
    import mxnet as mx
    from mxnet import npx

    from d2l import mxnet as d2l
    worker = d2l.Worker('dist_sync' if distributed else None)
    kv, rank, num_workers = worker.kv, worker.rank, worker.num_workers
    paragraphs = d2l.read_wiki(data_dir)
    vocab = d2l.wiki_vocab(d2l.tokenize([s for p in paragraphs for s in p]))
    devices = worker.devices
    mx.random.seed(0)
    net = d2l.small_bert(len(vocab), MAX_LEN, devices)
    step_loss, trainer = d2l.job_pretraining_step(net, len(vocab), kv)
    batches = d2l.worker_batches(paragraphs[rank::num_workers], vocab, MAX_LEN,
                                 batch_size, 0, rank)
    batches = [next(batches)[2] for _ in range(warmup + steps)]  # built ahead
    for i, batch in enumerate(batches):
        if i == warmup:
            npx.waitall()
            start = time.time()
        d2l.train_step(step_loss, trainer, batch, devices,
                       worker.sum(d2l.batch_totals(batch)))
    npx.waitall()
    seconds = time.time() - start
    pairs = worker.sum([sum(len(b[0]) for b in batches[warmup:])])[0]
    exchanges = []
    for _ in range(rounds if kv else 0):
        start = time.time()
        trainer.allreduce_grads()
        npx.waitall()
        exchanges.append(time.time() - start)
    pushed = 4 * sum(p.grad().size for p in net.collect_params().values()
                     if p.grad_req != 'null')
    if rank == 0:
        pathlib.Path(out).write_text(json.dumps({
            'workers': num_workers if kv else 0, 'pairs_per_sec': pairs / seconds,
            'seconds_per_step': seconds / steps,
            'exchange_seconds': sorted(exchanges)[len(exchanges) // 2] if kv else 0,
            'bytes_pushed': pushed if kv else 0, 'vocab': len(vocab)}))


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('--workers', type=int, nargs='+', default=[0, 1, 2, 4])
    parser.add_argument('--batch-per-worker', type=int, default=64)
    parser.add_argument('--warmup', type=int, default=3)
    parser.add_argument('--steps', type=int, default=10)
    parser.add_argument('--rounds', type=int, default=5)
    parser.add_argument('--port', type=int, default=9191)
    parser.add_argument('--worker', nargs=3, metavar=('DATA_DIR', 'OUT', 'DIST'),
                        help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        data_dir, out, distributed = args.worker
        worker(data_dir, out, args.batch_per_worker, args.warmup, args.steps,
               args.rounds, distributed == '1')
        return
    from d2l import launch
    with tempfile.TemporaryDirectory() as tmp:
        write_train_file(default_text(), tmp)
        print(f'{"workers":>7} {"pairs/s":>8} {"s/step":>7} '
              f'{"exchange s/step":>15} {"MiB pushed (= pulled)/worker/step":>34}')
        for n in args.workers:
            out = pathlib.Path(tmp, f'{n}.json')
            command = [sys.executable, __file__, '--worker', tmp, str(out),
                       '1' if n else '0', '--batch-per-worker',
                       str(args.batch_per_worker), '--warmup', str(args.warmup),
                       '--steps', str(args.steps), '--rounds', str(args.rounds)]
            if n:
                launch.run_job(command, n, 1, args.port)
            else:
                subprocess.run(command, check=True)
            r = json.loads(out.read_text())
            print(f'{n:>7} {r["pairs_per_sec"]:>8.1f} '
                  f'{r["seconds_per_step"]:>7.3f} {r["exchange_seconds"]:>15.3f} '
                  f'{r["bytes_pushed"] / 2**20:>34.2f}', flush=True)
        print(f'(vocabulary {r["vocab"]}, {args.batch_per_worker} pairs per '
              'worker and step, 1 server; workers 0: one process, no kvstore)')


if __name__ == '__main__':
    main()
