"""Serve the project's own WikiText-2 and SNLI stand-ins on loopback, offline.

As a program it packs ``offline_data/wiki.valid.tokens`` (as the training
split) and ``offline_data/wiki.test.tokens`` (as the held-out split) into an
archive laid out like ``wikitext-2-v1.zip``, and SNLI's dev split (as the
training split) and test split from ``offline_data/snli/`` into one laid out
like ``snli_1.0.zip``.
It serves both on 127.0.0.1, points ``D2L_DATA_HUB`` at them, uses a fresh
cache (unless ``D2L_DATA_DIR`` is set) and runs the command given after
``--``::

    python tools/offline_hub.py -- d2lbook build eval

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

DATA = pathlib.Path(__file__).resolve().parent.parent / 'offline_data'
# The stand-in trains on WikiText-2's validation split and holds out its test
# split, so that training and held-out text stay apart.
FIXTURE = DATA / 'wiki.valid.tokens'
HELD_OUT = DATA / 'wiki.test.tokens'
# SNLI's dev split stands in for its training split; its test split is itself.
SNLI_DIR = DATA / 'snli'
SNLI_SPLITS = {'train': 'dev', 'test': 'test'}


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


def snli_table(split):
    """Return a fixture split of SNLI as tab-separated text with a header row.

    Only the three columns the book reads are written: gold_label, sentence1
    and sentence2 (the official files have eleven more).
    """
    columns = [(SNLI_DIR / f'{name}.{split}').read_text(encoding='utf-8')
               .splitlines() for name in ('labels', 's1', 's2')]
    if len({len(c) for c in columns}) != 1:
        raise ValueError(f'{SNLI_DIR}: labels.{split}, s1.{split} and '
                         f's2.{split} have different numbers of lines')
    rows = ['gold_label\tsentence1\tsentence2']
    rows += ['\t'.join(cell.strip() for cell in row) for row in zip(*columns)]
    return '\n'.join(rows) + '\n'


def make_snli_archive(zip_path):
    """Pack the SNLI stand-in's training and test splits in a zip; return its SHA-1."""
    return make_archive(zip_path, {
        f'snli_1.0/snli_1.0_{name}.txt': snli_table(split).encode('utf-8')
        for name, split in SNLI_SPLITS.items()})


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
        wiki_sha1 = make_wikitext_archive(os.path.join(www, 'wikitext-2-v1.zip'))
        snli_sha1 = make_snli_archive(os.path.join(www, 'snli_1.0.zip'))
        hub = os.path.join(tmp, 'hub.json')
        with serve(www) as base_url:
            write_hub(hub, {
                'wikitext-2': [base_url + 'wikitext-2-v1.zip', wiki_sha1],
                'snli': [base_url + 'snli_1.0.zip', snli_sha1]})
            env = dict(os.environ, D2L_DATA_HUB=hub)
            # keep the stand-in out of any cache that holds the real dataset
            env.setdefault('D2L_DATA_DIR', os.path.join(tmp, 'cache'))
            return subprocess.call(args.command, env=env)


if __name__ == '__main__':
    sys.exit(main())
