"""MXNet's own job launcher (mxnet/tools/launch.py), made to run on Python 3.11.

It starts the scheduler, servers and workers of a parameter-server job on a
cluster through ssh, MPI, SGE or YARN (see its --help), each running the
command given; scripts/pretrain.py reads its role from the environment that
the launcher sets. For example, on four machines listed in hosts.txt:

    python scripts/launch.py -n 4 -s 2 -H hosts.txt --launcher ssh \\
        python scripts/pretrain.py --steps 1000

Unlike scripts/pretrain.py --workers, it does not stop the job when one of
its processes dies. Its tracker calls Thread.isAlive, which Python 3.9
removed (is_alive is the same method); that is all this file restores.
"""

import importlib.util
import pathlib
import runpy
import sys
import threading


def mxnet_launcher():
    """The path of the launcher in the installed MXNet, without importing it."""
    package = pathlib.Path(importlib.util.find_spec('mxnet').origin).parent
    return package / 'tools' / 'launch.py'


if __name__ == '__main__':
    threading.Thread.isAlive = threading.Thread.is_alive
    sys.argv[0] = str(mxnet_launcher())
    runpy.run_path(sys.argv[0], run_name='__main__')
