"""What the benchmarks share: the two Pythons, the text, seeds and memory."""

import json
import pathlib
import random
import resource
import subprocess
import sys

ROOT = pathlib.Path(__file__).resolve().parent.parent
PYTHONS = {'ours': ROOT / '.venv' / 'bin' / 'python',
           'd2l 0.17.6': ROOT / 'benchmarks' / '.venv-d2l0176' / 'bin'
           / 'python'}
DATA = ROOT / 'offline_data'
# d2l 0.17.6's pretraining configuration: the sizes of the chapter's
# d2l.SMALL_BERT (tests/test_library.py checks it), with its dropout of 0.2.
MAX_LEN, BATCH_SIZE = 64, 512
CONFIG = dict(num_hiddens=128, ffn_num_hiddens=256, num_heads=2,
              num_layers=2, dropout=0.2)


def default_text():
    """Return the text files to benchmark on: WikiText-2's valid and test splits."""
    return [DATA / 'wiki.valid.tokens', DATA / 'wiki.test.tokens']


def wiki_dataset(d2l, data_dir, max_len):
    """Build the pretraining examples with either library's names."""
    if hasattr(d2l, 'WikiTextDataset'):  # ours
        return d2l.WikiTextDataset(d2l.read_wiki(data_dir), max_len)
    return d2l._WikiTextDataset(d2l._read_wiki(data_dir), max_len)


def write_train_file(texts, data_dir):
    """Concatenate text files into data_dir/wiki.train.tokens."""
    with open(pathlib.Path(data_dir, 'wiki.train.tokens'), 'wb') as f:
        for path in texts:
            f.write(path.read_bytes())


def peak_mb():
    """Peak resident set size of this process in MB (Linux reports KiB)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def seed_all(seed):
    """Seed Python's, NumPy's and MXNet's random number generators."""
    import mxnet as mx
    import numpy
    random.seed(seed)
    numpy.random.seed(seed)
    mx.random.seed(seed)


def run_worker(name, script, worker_args, threads=None, env=None):
    """Run script's worker under one implementation's Python; return its JSON.

    threads, if given, becomes the worker's OMP_NUM_THREADS; env adds
    variables."""
    python = PYTHONS[name]
    if not python.exists():
        sys.exit(f'{python} not found: run benchmarks/setup_d2l0176.sh first')
    command = [str(python), str(script), '--worker'] + worker_args
    settings = {'PATH': '/usr/bin:/bin', 'PYTHONUTF8': '1', 'MPLBACKEND': 'Agg',
                **(env or {})}
    if threads:
        settings['OMP_NUM_THREADS'] = str(threads)
    # From /, so that the project's d2l package never shadows d2l 0.17.6.
    out = subprocess.run(command, cwd='/', check=True, text=True,
                         stdout=subprocess.PIPE, env=settings)
    return json.loads(out.stdout.strip().splitlines()[-1])


def our_train_step(d2l, net, vocab_size, devices):
    """Return train_step of the library's hybridized PretrainingLoss with Adam."""
    step_loss, trainer = d2l.pretraining_step(
        net, d2l.CrossEntropyLoss(), vocab_size,
        optimizer_params={'learning_rate': 1e-3})
    return lambda batch: d2l.train_step(step_loss, trainer, batch, devices)
