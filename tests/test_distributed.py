"""Parameter-server jobs: layout, exactness, sharded data, checkpoints, faults.

Run as a program (``python test_distributed.py worker DATA_DIR OUT_DIR``), this
file is the worker of the exactness test's job.
"""

import os
import pathlib
import re
import signal
import socket
import subprocess
import sys
import time

import mxnet as mx
import numpy as onp
import pytest
from mxnet import np, npx

from d2l import launch
from d2l import mxnet as d2l

ROOT = pathlib.Path(__file__).resolve().parent.parent
PRETRAIN = ROOT / 'scripts' / 'pretrain.py'
sys.path[:0] = [str(ROOT / 'scripts'), str(ROOT / 'tools')]  # also as a program
import offline_hub  # noqa: E402
import pretrain  # noqa: E402

MAX_LEN = 32
BATCHES = (8, 7, 5)  # pairs per step: shards of 4 + 4, 4 + 3, 3 + 2


def free_port():
    with socket.socket() as s:
        s.bind(('127.0.0.1', 0))
        return s.getsockname()[1]


def write_text(directory, num_lines):
    """Put the first lines of the real-text fixture in directory as wiki.train.tokens."""
    lines = offline_hub.FIXTURE.read_text(encoding='utf-8').splitlines(keepends=True)
    (directory / 'wiki.train.tokens').write_text(''.join(lines[:num_lines]),
                                                 encoding='utf-8')
    return directory


def exactness_run(data_dir, kv):
    """Train on BATCHES with dropout 0; each worker takes its part of each."""
    rank, num_workers = (kv.rank, kv.num_workers) if kv else (0, 1)
    onp.random.seed(0)
    dataset = d2l.WikiTextDataset(d2l.read_wiki(str(data_dir)), MAX_LEN)
    mx.random.seed(0)
    devices = [mx.cpu()]
    net = d2l.small_bert(len(dataset.vocab), MAX_LEN, devices, dropout=0)
    # SGD: the parameters move by the gradients themselves (Adam would let
    # gradients as small as rounding errors move them by its learning rate)
    step_loss, trainer = d2l.job_pretraining_step(net, len(dataset.vocab), kv,
                                                  'sgd', 0.5)
    sum_over_workers, start, losses = d2l.SumOverWorkers(kv), 0, []
    for size in BATCHES:
        rows = onp.array_split(onp.arange(start, start + size), num_workers)[rank]
        start += size
        batch = [np.array(a[rows]) for a in dataset.arrays]
        totals = sum_over_workers(d2l.batch_totals(batch))
        shares = d2l.train_step(step_loss, trainer, batch, devices, totals)
        losses.append(sum_over_workers([sum(float(x) for x in share)
                                        for share in zip(*shares)]))
    return net, onp.array(losses)


@pytest.fixture
def small_wiki(tmp_path, monkeypatch):
    """Point D2L_DATA_HUB at an archive of the fixture's first 400 lines."""
    text = write_text(tmp_path, 400).joinpath('wiki.train.tokens').read_bytes()
    archive = tmp_path / 'wikitext-2-v1.zip'
    sha1 = offline_hub.make_archive(archive, {
        'wikitext-2/wiki.train.tokens': text,
        'wikitext-2/wiki.valid.tokens': offline_hub.HELD_OUT.read_bytes()})
    offline_hub.write_hub(tmp_path / 'hub.json',
                          {'wikitext-2': [archive.as_uri(), sha1]})
    monkeypatch.setenv('D2L_DATA_HUB', str(tmp_path / 'hub.json'))
    return text.decode('utf-8')


def run_pretrain(*args, timeout=120):
    return subprocess.run([sys.executable, str(PRETRAIN), *args], text=True,
                          capture_output=True, timeout=timeout)


def test_job_layout_on_this_machine():
    processes = launch.job_processes(['python', 'train.py'], 2, 3, 9999)
    names = [name for name, _, _ in processes]
    assert names == ['scheduler', 'server 0', 'server 1', 'server 2',
                     'worker 0', 'worker 1']
    for name, argv, env in processes:
        assert env['DMLC_ROLE'] == name.split()[0]
        assert (env['DMLC_PS_ROOT_URI'], env['DMLC_PS_ROOT_PORT']) == ('127.0.0.1', '9999')
        assert (env['DMLC_NUM_SERVER'], env['DMLC_NUM_WORKER']) == ('3', '2')
        expected = (['python', 'train.py'] if name.startswith('worker')
                    else ['python', '-c', 'import mxnet'])
        assert argv == expected


def test_job_layout_over_ssh():
    processes = launch.job_processes(['/venv/bin/python', 'my script.py'], 3, 1,
                                  9100, hosts=['node-a', 'node-b'])
    hosts = [(name, argv[argv.index('-tt') + 1]) for name, argv, _ in processes]
    assert hosts == [('scheduler', 'node-a'), ('server 0', 'node-a'),
                     ('worker 0', 'node-a'), ('worker 1', 'node-b'),
                     ('worker 2', 'node-a')]
    name, argv, env = processes[3]
    assert argv[:4] == ['ssh', '-o', 'BatchMode=yes', '-tt']
    remote = argv[-1]
    assert remote.startswith(f'cd {os.getcwd()} && env ')
    words = remote.split(' && ', 1)[1].split(' ')
    assert 'DMLC_ROLE=worker' in words and 'DMLC_PS_ROOT_URI=node-a' in words
    assert 'DMLC_NODE_HOST=node-b' in words and 'DMLC_NUM_WORKER=3' in words
    assert remote.endswith("/venv/bin/python 'my script.py'")  # quoted
    assert processes[1][1][-1].endswith('/venv/bin/python -c \'import mxnet\'')


def test_hosts_file(tmp_path):
    path = tmp_path / 'hosts'
    path.write_text('# the cluster\nnode-a\n\n  node-b  # second\n')
    assert pretrain.read_hosts(str(path)) == ['node-a', 'node-b']
    path.write_text('# nobody\n')
    with pytest.raises(ValueError, match='names no host'):
        pretrain.read_hosts(str(path))
    path.write_text('node-a node-b\n')
    with pytest.raises(ValueError, match="'node-a node-b' is not a host name"):
        pretrain.read_hosts(str(path))
    path.write_bytes(b'\xff\xfe')
    with pytest.raises(ValueError, match=f'cannot read the hosts file {path}'):
        pretrain.read_hosts(str(path))


@pytest.mark.parametrize('args, message', [
    (['--hosts', '/no/such/hosts'], 'cannot read the hosts file /no/such/hosts'),
    (['--workers', '3', '--batch-size', '2'],
     '3 workers need a batch of at least 3 pairs, got --batch-size 2'),
    (['--workers', '500', '--batch-size', '1000'], '500 workers but the text has only'),
    (['--resume', '/no/such/dir', '--workers', '2'], '/no/such/dir: no checkpoint'),
    (['--save', '/proc/version'], 'cannot save into --save /proc/version'),
])
def test_bad_jobs_are_refused_before_starting(small_wiki, args, message):
    result = run_pretrain('--steps', '2', *args, timeout=60)
    assert result.returncode == 1
    assert message in result.stderr
    assert 'pretraining' not in result.stderr  # no worker ever started


@pytest.mark.parametrize('args, message', [
    (['--warmup', '1.5'], '--warmup must be between 0 and 1'),
    (['--dropout', '1'], '--dropout must be at least 0 and below 1'),
    (['--lr', '0'], '--lr must be positive'),
])
def test_bad_recipes_are_refused(args, message):
    result = run_pretrain(*args, timeout=60)
    assert result.returncode == 2 and message in result.stderr


def test_pretrain_saves_a_model_that_load_bert_reads(small_wiki, tmp_path):
    save = tmp_path / 'bert-small'
    result = run_pretrain('--steps', '3', '--batch-size', '16', '--max-len',
                          '32', '--save', str(save))
    assert result.returncode == 0, result.stderr
    net, vocab = d2l.load_bert(str(save), [mx.cpu()])
    assert net.config == {**d2l.SMALL_BERT, 'vocab_size': len(vocab),
                          'max_len': 32}
    assert re.search(r'held-out MLM loss \d+\.\d{3} \(-?\d+\.\d{2} below the '
                     r'unigram floor \d+\.\d{3}\), MLM accuracy', result.stdout)


def test_port_in_use_is_refused_before_starting(small_wiki):
    with socket.socket() as s:
        s.bind(('127.0.0.1', 0))
        s.listen()
        port = s.getsockname()[1]
        result = run_pretrain('--steps', '2', '--workers', '2', '--port',
                              str(port), timeout=60)
    assert result.returncode == 1
    assert f'port {port} on 127.0.0.1 is already in use' in result.stderr
    assert 'pretraining' not in result.stderr


def test_worker_batches_are_the_workers_own_and_restorable(tmp_path):
    paragraphs = d2l.read_wiki(str(write_text(tmp_path, 120)))
    vocab = d2l.Vocab(d2l.tokenize([s for p in paragraphs for s in p]),
                      min_freq=2, reserved_tokens=d2l.BERT_RESERVED_TOKENS)

    def stream(rank, seed=0, start=(0, 0)):
        return d2l.worker_batches(paragraphs[rank::2], vocab, MAX_LEN, 16,
                                  seed, rank, start)

    def same(a, b):
        return all(x.shape == y.shape and bool((x == y).all()) for x, y in zip(a, b))

    ours = [next(stream(0)) for _ in range(2)]
    assert same(ours[0][2], ours[1][2])  # same seed, same batches
    assert not same(ours[0][2], next(stream(1))[2])  # another worker's shard
    assert not same(ours[0][2], next(stream(0, seed=1))[2])
    # Restarting at any reported position, across epochs, continues the stream
    whole, epochs = list(zip(range(40), stream(0))), set()
    for i in (0, 5, 20, 38):
        epoch, index, _ = whole[i][1]
        epochs.add(epoch)
        assert same(next(stream(0, start=(epoch, index)))[2], whole[i + 1][1][2])
    assert whole[-1][1][0] >= 1  # the stream went past its first epoch
    first_epoch = [b for _, (e, _, b) in whole if e == 0]
    second_epoch = [b for _, (e, _, b) in whole if e == 1]
    assert not same(first_epoch[0], second_epoch[0])  # new pairs and masks


def test_two_workers_match_one_process(tmp_path):
    """With dropout 0, a job whose two workers each compute part of every
    batch (evenly and unevenly) updates the parameters as one process does."""
    data_dir = write_text(tmp_path, 200)
    launch.run_job([sys.executable, __file__, 'worker', str(data_dir),
                 str(tmp_path)], 2, 1, free_port())
    net, losses = exactness_run(data_dir, None)
    job_losses = onp.loadtxt(tmp_path / 'job_losses.txt')
    onp.testing.assert_allclose(job_losses, losses, rtol=1e-5)
    job_params = mx.nd.load(str(tmp_path / 'job.params'))
    ours = net._collect_params_with_prefix()
    assert set(job_params) == set(ours)
    for name, value in job_params.items():
        onp.testing.assert_allclose(value.asnumpy(), ours[name].data().asnumpy(),
                                    rtol=1e-5, atol=1e-6, err_msg=name)


def test_workers_start_from_worker_0s_parameters(tmp_path):
    """Workers initialized with different seeds hold worker 0's parameters as
    soon as their pretraining step is built, before any gradient is pushed:
    otherwise a late first pull can return the sum of the first gradients."""
    launch.run_job([sys.executable, __file__, 'copy', str(tmp_path)], 2, 1,
                   free_port())
    ours = [mx.nd.load(str(tmp_path / f'worker{rank}.params')) for rank in (0, 1)]
    assert set(ours[0]) == set(ours[1])
    for name in ours[0]:
        onp.testing.assert_array_equal(ours[0][name].asnumpy(),
                                       ours[1][name].asnumpy(), err_msg=name)
    mx.random.seed(1)  # worker 1's own initialization differs from worker 0's
    own = d2l.small_bert(100, MAX_LEN, [mx.cpu()])._collect_params_with_prefix()
    assert any(not onp.array_equal(own[name].data().asnumpy(), value.asnumpy())
               for name, value in ours[0].items())


def test_resumed_job_continues_from_its_checkpoint(small_wiki, tmp_path):
    common = ['--steps', '8', '--batch-size', '16', '--max-len', '32',
              '--workers', '2']
    whole, part = tmp_path / 'whole', tmp_path / 'part'
    result = run_pretrain('--checkpoint-dir', str(whole), '--port',
                          str(free_port()), *common)
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert len(lines) == 2  # printed once per job, not once per worker
    assert lines[0].startswith('MLM loss ') and ', NSP loss ' in lines[0]
    assert lines[1].endswith("sentence pairs/sec on 2 worker(s), each on [cpu(0)]")
    assert 'Building BERT examples' not in result.stderr  # no bar per epoch
    # the same job, stopped once it has written a checkpoint
    job = subprocess.Popen([sys.executable, str(PRETRAIN), '--checkpoint-dir',
                            str(part), '--checkpoint-every', '2', '--port',
                            str(free_port()), *common],
                           stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    deadline = time.time() + 60
    while not (part / 'latest').exists() and job.poll() is None:
        assert time.time() < deadline
        time.sleep(0.05)
    job.terminate()
    job.communicate(timeout=60)
    _, state = d2l.read_checkpoint(str(part))
    result = run_pretrain('--resume', str(part), '--port', str(free_port()),
                          *common)
    assert result.returncode == 0, result.stderr
    _, expected = d2l.read_checkpoint(str(whole))
    _, resumed = d2l.read_checkpoint(str(part))
    assert resumed['step'] == expected['step'] == 8
    assert resumed['positions'] == expected['positions']
    onp.testing.assert_allclose(resumed['losses'], expected['losses'], rtol=1e-6)
    assert len({tuple(x) for x in expected['losses']}) == 8
    # resuming with another schedule is refused
    result = run_pretrain('--resume', str(part), '--port', str(free_port()),
                          *common, '--steps', '9')
    assert result.returncode == 1 and "'steps': 8" in result.stderr
    assert state['step'] in (2, 4, 6, 8)


def test_mxnet_launcher_starts_the_script_as_a_job(small_wiki, tmp_path):
    """MXNet's own launcher, through scripts/launch.py, runs pretrain.py's
    scheduler, server and workers, which read their roles from DMLC_*."""
    result = subprocess.run(
        [sys.executable, str(ROOT / 'scripts' / 'launch.py'), '-n', '2', '-s',
         '1', '--launcher', 'local', sys.executable, str(PRETRAIN),
         '--steps', '3', '--batch-size', '16', '--max-len', '32',
         '--checkpoint-dir', str(tmp_path / 'ckpt')],
        text=True, capture_output=True, timeout=180)
    assert result.returncode == 0, result.stderr
    assert 'sentence pairs/sec on 2 worker(s)' in result.stdout
    _, state = d2l.read_checkpoint(str(tmp_path / 'ckpt'))
    assert state['step'] == 3 and state['config']['num_workers'] == 2
    assert len(state['positions']) == 2 and len(state['losses']) == 3


def test_a_failed_save_keeps_the_previous_checkpoint(tmp_path):
    net = d2l.small_bert(50, MAX_LEN, [mx.cpu()])
    _, trainer = d2l.job_pretraining_step(net, 50, None)
    first = d2l.save_checkpoint(str(tmp_path), net, trainer, {'step': 1})
    with pytest.raises(TypeError):  # fails while writing state.json
        d2l.save_checkpoint(str(tmp_path), net, trainer,
                            {'step': 2, 'bad': object()})
    assert d2l.read_checkpoint(str(tmp_path)) == (first, {'step': 1})
    assert sorted(os.listdir(first)) == ['bert.params', 'state.json',
                                         'trainer.states']
    second = d2l.save_checkpoint(str(tmp_path), net, trainer, {'step': 2})
    assert sorted(os.listdir(tmp_path)) == ['latest', 'step-00000002']
    assert d2l.read_checkpoint(str(tmp_path)) == (second, {'step': 2})


def job_pids(port):
    """Return {role: [pids]} of the processes of the job on port."""
    pids = {}
    for entry in pathlib.Path('/proc').iterdir():
        try:
            env = (entry / 'environ').read_bytes().split(b'\0')
        except (OSError, ValueError):
            continue
        if f'DMLC_PS_ROOT_PORT={port}'.encode() in env:
            role = next(v for v in env if v.startswith(b'DMLC_ROLE='))
            pids.setdefault(role.split(b'=')[1].decode(), []).append(int(entry.name))
    return pids


def alive(pid):
    try:
        state = pathlib.Path(f'/proc/{pid}/stat').read_text().split(')')[-1].split()[0]
    except OSError:
        return False
    return state != 'Z'


@pytest.mark.parametrize('role', ['worker', 'server', 'launcher'])
def test_a_killed_process_ends_the_whole_job(small_wiki, tmp_path, role):
    port = free_port()
    job = subprocess.Popen(
        [sys.executable, str(PRETRAIN), '--steps', '100000', '--batch-size', '16',
         '--max-len', '32', '--workers', '2', '--port', str(port),
         '--checkpoint-dir', str(tmp_path / 'ckpt'), '--checkpoint-every', '1'],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    deadline = time.time() + 60
    while not (tmp_path / 'ckpt' / 'latest').exists():  # training is under way
        assert job.poll() is None and time.time() < deadline, job.communicate()
        time.sleep(0.2)
    pids = job_pids(port)
    assert sorted(pids) == ['scheduler', 'server', 'worker']
    victim = job.pid if role == 'launcher' else sorted(pids[role])[-1]
    os.kill(victim, signal.SIGKILL)
    killed_at = time.time()
    _, stderr = job.communicate(timeout=60)
    if role != 'launcher':
        assert job.returncode == 1
        assert re.search(f'error: {role} [01] \\(pid {victim}\\) was killed '
                         'by signal 9; stopped the job', stderr), stderr
    job_processes = [pid for group in pids.values() for pid in group]
    while any(alive(pid) for pid in job_processes):
        assert time.time() - killed_at < 60
        time.sleep(0.2)


if __name__ == '__main__' and sys.argv[1:2] == ['copy']:
    kv = mx.kv.create('dist_sync')
    mx.random.seed(kv.rank)
    net = d2l.small_bert(100, MAX_LEN, [mx.cpu()])
    d2l.job_pretraining_step(net, 100, kv)
    net.save_parameters(str(pathlib.Path(sys.argv[2]) / f'worker{kv.rank}.params'))

if __name__ == '__main__' and sys.argv[1:2] == ['worker']:
    data_dir, out_dir = map(pathlib.Path, sys.argv[2:])
    kv = mx.kv.create('dist_sync')
    net, losses = exactness_run(data_dir, kv)
    # Send the last gradients before exiting: at exit MXNet stops its engine,
    # dropping queued pushes, and the other worker would wait for them forever
    npx.waitall()
    if kv.rank == 0:
        net.save_parameters(str(out_dir / 'job.params'))
        onp.savetxt(out_dir / 'job_losses.txt', losses)
