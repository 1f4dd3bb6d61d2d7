"""Pretrain the chapter's BERT with the book's recipe, on one machine or several.

One process on this machine's devices, with the book's recipe
(d2l.PRETRAINING), saving the model for d2l.load_bert:

    python scripts/pretrain.py --save bert-small

A parameter-server job (a scheduler, M servers, N workers) on this machine,
or on the machines listed in a hosts file (one name per line, started with
ssh in this directory, which each machine must hold at the same path); the
job ends as a whole when one of its processes fails:

    python scripts/pretrain.py --workers 2 --servers 1 --steps 1000
    python scripts/pretrain.py --hosts hosts.txt --workers 4 --servers 2

This file is also the program of every process of the job: a process whose
environment has DMLC_ROLE is one (servers and the scheduler serve inside
`import mxnet` and never return from it), so MXNet's own launcher can start
it too, for example through MPI (see scripts/launch.py):

    python scripts/launch.py -n 4 -s 2 -H hosts.txt --launcher mpi \
        python scripts/pretrain.py --steps 1000

The training is the library's (`d2l.pretrain_bert`), described in
chapter_bert/bert-distributed.md.
"""

import argparse
import os
import signal
import sys
import tempfile

from d2l import launch
from d2l import mxnet as d2l  # a job's servers and scheduler serve in here


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    recipe = d2l.PRETRAINING  # the book's recipe is the default
    parser.add_argument('--steps', type=int, default=recipe['num_steps'])
    parser.add_argument('--batch-size', type=int,
                        default=recipe['batch_size'],
                        help='rows of --max-len positions per step, over all '
                        'workers (packed: about as many positions, in rows '
                        '1.5 times as long)')
    parser.add_argument('--packed', action=argparse.BooleanOptionalAction,
                        default=recipe['packed'],
                        help='several pairs per row (the recipe), or one')
    parser.add_argument('--max-len', type=int, default=recipe['max_len'])
    parser.add_argument('--lr', type=float, default=recipe['lr'],
                        help='the peak learning rate')
    parser.add_argument('--warmup', type=float, default=recipe['warmup'],
                        help='the share of the steps that warm up')
    parser.add_argument('--dropout', type=float,
                        default=d2l.SMALL_BERT['dropout'])
    parser.add_argument('--seed', type=int, default=0)
    devices = parser.add_mutually_exclusive_group()
    devices.add_argument('--gpus', type=int, nargs='+', metavar='I',
                         help='GPU indices each worker uses')
    devices.add_argument('--cpus', type=int, default=1,
                         help='number of CPU contexts each worker uses')
    parser.add_argument('--workers', type=int,
                        help='run a job with this many worker processes '
                        '(default: one process, no job; with --hosts: one per host)')
    parser.add_argument('--servers', type=int, default=1)
    parser.add_argument('--hosts', metavar='FILE',
                        help='run the job on these machines (one per line)')
    parser.add_argument('--port', type=int, default=9091,
                        help="the scheduler's port")
    parser.add_argument('--checkpoint-dir')
    parser.add_argument('--checkpoint-every', type=int, default=0,
                        metavar='N', help='also write a checkpoint every N steps')
    parser.add_argument('--resume', metavar='DIR',
                        help='continue from the newest checkpoint in DIR')
    parser.add_argument('--save', metavar='DIR',
                        help='save the pretrained model into DIR (for '
                        'd2l.load_bert) and score it on the held-out split')
    parser.add_argument('--progress', action=argparse.BooleanOptionalAction,
                        default=sys.stderr.isatty(),
                        help='show a progress bar (default: on a terminal)')
    args = parser.parse_args(argv)
    for name in ('steps', 'batch_size', 'servers', 'cpus'):
        if getattr(args, name) < 1:
            parser.error(f'--{name.replace("_", "-")} must be at least 1')
    if not 0 <= args.warmup <= 1:
        parser.error('--warmup must be between 0 and 1')
    if not 0 <= args.dropout < 1:
        parser.error('--dropout must be at least 0 and below 1')
    if args.lr <= 0:
        parser.error('--lr must be positive')
    if args.workers is not None and args.workers < 1:
        parser.error('--workers must be at least 1')
    if args.checkpoint_every and not args.checkpoint_dir:
        parser.error('--checkpoint-every needs --checkpoint-dir')
    if args.resume and not args.checkpoint_dir:
        args.checkpoint_dir = args.resume
    return args


def read_hosts(path):
    """Return the host names listed in path, one a line ('#' comments)."""
    try:
        with open(path, encoding='utf-8') as f:
            lines = f.read().splitlines()
    except (OSError, UnicodeDecodeError) as e:
        raise ValueError(f'cannot read the hosts file {path}: {e}') from e
    hosts = [line.split('#')[0].strip() for line in lines]
    hosts = [host for host in hosts if host]
    if not hosts:
        raise ValueError(f'the hosts file {path} names no host')
    for host in hosts:
        if len(host.split()) != 1 or host.startswith('-'):
            raise ValueError(f'the hosts file {path}: {host!r} is not a '
                             'host name')
    return hosts


def check_job(args, num_workers):
    """Refuse, before anything starts, a job its data cannot feed."""
    if num_workers > args.batch_size:
        raise ValueError(f'{num_workers} workers need a batch of at least '
                         f'{num_workers} pairs, got --batch-size '
                         f'{args.batch_size}')
    num_paragraphs = len(d2l.read_wiki(d2l.download_wiki()))
    if num_workers > num_paragraphs:
        raise ValueError(f'{num_workers} workers but the text has only '
                         f'{num_paragraphs} paragraphs to share among them')
    if args.save:  # find out now, not after the training
        try:
            os.makedirs(args.save, exist_ok=True)
            tempfile.TemporaryFile(dir=args.save).close()
        except OSError as e:
            raise ValueError(f'cannot save into --save {args.save}: {e}') from e
    if args.resume:
        path, state = d2l.read_checkpoint(args.resume)
        if state['config']['num_workers'] != num_workers:
            raise ValueError(f'{path} was written by a job of '
                             f'{state["config"]["num_workers"]} workers, '
                             f'not {num_workers}')


def score_held_out(directory, max_len):
    """Print the held-out scores of the model saved in directory."""
    net, vocab = d2l.load_bert(directory, [d2l.try_gpu()])
    train_iter, _ = d2l.load_data_wiki(512, max_len, vocab=vocab)
    held_out_iter, _ = d2l.load_data_wiki(512, max_len, 'valid', vocab)
    floor, most_frequent = d2l.unigram_baselines(train_iter.dataset,
                                                 held_out_iter.dataset)
    s = d2l.evaluate_bert(net, held_out_iter, d2l.try_gpu())
    print(f'held-out MLM loss {s["mlm_ce"]:.3f} ({floor - s["mlm_ce"]:.2f} '
          f'below the unigram floor {floor:.3f}), MLM accuracy '
          f'{s["mlm_acc"]:.3f} (most frequent word {most_frequent:.3f}), '
          f'NSP accuracy {s["nsp_acc"]:.3f} of {s["num_pairs"]} pairs')


def worker_argv(argv, args):
    """The command line of the job's workers: this program, as it was called."""
    argv = sys.argv[1:] if argv is None else list(argv)
    return [sys.executable, os.path.abspath(__file__), *argv,
            '--progress' if args.progress else '--no-progress']


def main(argv=None):
    args = parse_args(argv)
    train = dict(steps=args.steps, batch_size=args.batch_size,
                 max_len=args.max_len, lr=args.lr, warmup=args.warmup,
                 seed=args.seed, dropout=args.dropout, packed=args.packed,
                 gpus=args.gpus or (), cpus=args.cpus,
                 checkpoint_dir=args.checkpoint_dir,
                 checkpoint_every=args.checkpoint_every, resume=args.resume,
                 save_dir=args.save, progress=args.progress)
    try:
        if 'DMLC_ROLE' in os.environ:  # a worker of a job
            check_job(args, int(os.environ['DMLC_NUM_WORKER']))
            d2l.pretrain_bert(**train, kvstore='dist_sync')
            return
        # a launcher ends through Python on SIGTERM too, stopping its job (a
        # worker keeps the default: a handler would wait for MXNet's calls)
        signal.signal(signal.SIGTERM, lambda *_: sys.exit(128 + signal.SIGTERM))
        hosts = read_hosts(args.hosts) if args.hosts else None
        num_workers = args.workers or (len(hosts) if hosts else 1)
        check_job(args, num_workers)
        if args.workers is None and hosts is None:
            d2l.pretrain_bert(**train)
        else:
            launch.run_job(worker_argv(argv, args), num_workers, args.servers,
                           args.port, hosts)
        if args.save and hosts is None:  # else it is on worker 0's host
            score_held_out(args.save, args.max_len)
    except (ValueError, launch.JobError, d2l.DataError) as e:
        sys.exit(f'error: {e}')


if __name__ == '__main__':
    main()
