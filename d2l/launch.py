"""Start a parameter-server job and stop all of it when one process fails.

MXNet's own launcher (`mxnet/tools/launch.py` on `dmlc_tracker`, both in the
wheel; `scripts/launch.py` runs it on Python 3.11) starts jobs through ssh,
MPI, SGE or YARN, but leaves a job running when one of its processes dies:
the others then wait for it forever. `run_job` starts the job of one machine,
or of a few machines over ssh, and ends it as a whole.
"""

import codecs
import ctypes
import os
import shlex
import signal
import socket
import subprocess
import sys
import threading
import time


class JobError(RuntimeError):
    """A process of a distributed job failed, and the job was stopped."""


def job_processes(command, num_workers, num_servers, port, hosts=None):
    """Return (name, argv, env) of a job's scheduler, servers and workers."""
    machines = hosts or ['127.0.0.1']
    roles = ([('scheduler', 'scheduler', machines[0])]
             + [(f'server {i}', 'server', machines[i % len(machines)])
                for i in range(num_servers)]
             + [(f'worker {i}', 'worker', machines[i % len(machines)])
                for i in range(num_workers)])
    shared = {'DMLC_PS_ROOT_URI': machines[0], 'DMLC_PS_ROOT_PORT': str(port),
              'DMLC_NUM_SERVER': str(num_servers),
              'DMLC_NUM_WORKER': str(num_workers)}
    processes = []
    for name, role, host in roles:
        env = {**shared, 'DMLC_ROLE': role, 'DMLC_NODE_HOST': host}
        # servers and the scheduler serve from inside `import mxnet`
        argv = command if role == 'worker' else [command[0], '-c',
                                                 'import mxnet']
        if hosts is not None:  # run it there, in this directory
            exports = ' '.join(f'{k}={shlex.quote(v)}' for k, v in env.items())
            argv = ['ssh', '-o', 'BatchMode=yes', '-tt', host,
                    f'cd {shlex.quote(os.getcwd())} && env {exports} '
                    f'{shlex.join(argv)}']
        processes.append((name, argv, env))
    return processes


def check_port_free(port, host='127.0.0.1'):
    """Raise JobError if something on host already listens on port."""
    with socket.socket() as s:
        # as the scheduler does: connections of an earlier job that are
        # still closing do not count, a socket that listens does
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            s.bind((host, port))
            s.listen()
        except OSError as e:
            raise JobError(f'port {port} on {host} is already in use ({e}); '
                           'choose another port for the scheduler') from e


def die_with_parent():
    """Have Linux send this process SIGTERM when its parent dies."""
    ctypes.CDLL(None).prctl(1, signal.SIGTERM)  # 1 is PR_SET_PDEATHSIG


class Process:
    """A process of the job, its output relayed as it comes, its end kept."""

    def __init__(self, name, argv, env):
        self.name, self.tail = name, ''
        self.popen = subprocess.Popen(
            argv, env={**os.environ, **env}, stdout=subprocess.PIPE,
            stderr=subprocess.PIPE, start_new_session=True,
            preexec_fn=die_with_parent)
        for stream, out in ((self.popen.stdout, sys.stdout),
                            (self.popen.stderr, sys.stderr)):
            threading.Thread(target=self.relay, args=(stream, out),
                             daemon=True).start()

    def relay(self, stream, out):
        """Copy stream to out until it closes, keeping its last characters."""
        decoder = codecs.getincrementaldecoder('utf-8')(errors='replace')
        while chunk := os.read(stream.fileno(), 4096):
            text = decoder.decode(chunk)
            self.tail = (self.tail + text)[-3000:]
            out.write(text)
            out.flush()

    def failure(self):
        """Return why the process failed, or None while it runs or succeeded."""
        code = self.popen.poll()
        if not code:
            return None
        cause = (f'was killed by signal {-code}' if code < 0
                 else f'exited with code {code}')
        return f'{self.name} (pid {self.popen.pid}) {cause}'


def watch(processes):
    """Wait for the workers to end; raise JobError when any process fails."""
    workers = [p for p in processes if p.name.startswith('worker')]
    while any(p.popen.poll() is None for p in workers):
        for p in processes:
            if cause := p.failure():
                time.sleep(0.5)  # let its last words arrive
                raise JobError(f'{cause}; stopped the job. The end of its '
                               f'output:\n{p.tail}')
        time.sleep(0.2)
    for p in processes:  # the servers end when the workers are done
        try:
            p.popen.wait(30)
        except subprocess.TimeoutExpired:
            raise JobError(f'{p.name} (pid {p.popen.pid}) did not end after '
                           'the workers finished') from None
        if cause := p.failure():
            raise JobError(cause)


def stop(processes, grace):
    """End every process still running: SIGTERM, then SIGKILL after grace s."""
    for sig in (signal.SIGTERM, signal.SIGKILL):
        for p in processes:
            if p.popen.poll() is None:
                os.killpg(p.popen.pid, sig)  # it and the processes it started
        deadline = time.time() + grace
        while time.time() < deadline and any(p.popen.poll() is None
                                             for p in processes):
            time.sleep(0.1)


def run_job(command, num_workers, num_servers=1, port=9091, hosts=None,
            grace=5):
    """Run a parameter-server job; stop every process if one of them fails."""
    if hosts is None:
        check_port_free(port)
    processes = []
    try:
        for name, argv, env in job_processes(command, num_workers,
                                             num_servers, port, hosts):
            processes.append(Process(name, argv, env))
        watch(processes)
    finally:
        stop(processes, grace)
