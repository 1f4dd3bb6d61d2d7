"""Serve the project's own WikiText-2 stand-in on loopback, for offline runs.

As a program it packs ``tests/data/wiki.valid.tokens`` (as the training split)
and ``tests/data/wiki.test.tokens`` (as the held-out split) into an archive laid out
like ``wikitext-2-v1.zip``, serves it on 127.0.0.1, points ``D2L_DATA_HUB`` at
it, uses a fresh cache (unless ``D2L_DATA_DIR`` is set) and runs the command
given after ``--``::

    python tests/offline_hub.py -- d2lbook build eval

The tests import its pieces to build their own archives and servers.
"""

import argparse
import contextlib
import functools
import hashlib
import http.server
import json
import os
import pathlib
import subprocess
import sys
import tempfile
import threading
import zipfile

DATA = pathlib.Path(__file__).resolve().parent / 'data'
# The stand-in trains on WikiText-2's validation split and holds out its test
# split, so that training and held-out text stay apart.
FIXTURE = DATA / 'wiki.valid.tokens'
HELD_OUT = DATA / 'wiki.test.tokens'


def sha1sum(path):
    """Return the hex SHA-1 of a file."""
    return hashlib.sha1(pathlib.Path(path).read_bytes()).hexdigest()


def make_archive(zip_path, members):
    """Write a byte-for-byte reproducible zip of {name: bytes}; return its SHA-1."""
    with zipfile.ZipFile(zip_path, 'w', zipfile.ZIP_DEFLATED) as zf:
        for name, data in members.items():
            info = zipfile.ZipInfo(name, date_time=(1980, 1, 1, 0, 0, 0))
            info.compress_type = zipfile.ZIP_DEFLATED
            zf.writestr(info, data)
    return sha1sum(zip_path)


def make_wikitext_archive(zip_path):
    """Pack the stand-in's training and held-out text in a zip; return its SHA-1."""
    return make_archive(zip_path, {
        'wikitext-2/wiki.train.tokens': FIXTURE.read_bytes(),
        'wikitext-2/wiki.valid.tokens': HELD_OUT.read_bytes()})


def write_hub(path, entries):
    """Write a D2L_DATA_HUB file mapping name -> [url, sha1]."""
    pathlib.Path(path).write_text(json.dumps(entries, indent=1),
                                  encoding='utf-8')


class _QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, *args):
        pass


@contextlib.contextmanager
def serve(directory):
    """Serve a directory over HTTP on 127.0.0.1; yield the base URL."""
    handler = functools.partial(_QuietHandler, directory=str(directory))
    server = http.server.ThreadingHTTPServer(('127.0.0.1', 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f'http://127.0.0.1:{server.server_address[1]}/'
    finally:
        server.shutdown()
        server.server_close()


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('command', nargs='+', help='command to run')
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory() as tmp:
        www = os.path.join(tmp, 'www')
        os.mkdir(www)
        sha1 = make_wikitext_archive(os.path.join(www, 'wikitext-2-v1.zip'))
        hub = os.path.join(tmp, 'hub.json')
        with serve(www) as base_url:
            write_hub(hub, {'wikitext-2': [base_url + 'wikitext-2-v1.zip', sha1]})
            env = dict(os.environ, D2L_DATA_HUB=hub)
            # keep the stand-in out of any cache that holds the real dataset
            env.setdefault('D2L_DATA_DIR', os.path.join(tmp, 'cache'))
            return subprocess.call(args.command, env=env)


if __name__ == '__main__':
    sys.exit(main())
