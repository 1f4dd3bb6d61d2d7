"""d2l.data against real loopback HTTP servers, real files and real processes."""

import builtins
import contextlib
import errno
import hashlib
import http.server
import io
import os
import pathlib
import re
import signal
import socket
import stat
import struct
import subprocess
import sys
import tarfile
import textwrap
import threading
import time
import zipfile

import pytest
from offline_hub import make_archive, sha1sum, write_hub

from d2l import data

PAYLOAD = b'the quick brown fox\n' * 100
ROOT = pathlib.Path(__file__).resolve().parent.parent


@pytest.fixture
def www(tmp_path):
    """A directory to serve, holding a good file, a zip and a corrupt zip."""
    www = tmp_path / 'www'
    www.mkdir()
    (www / 'good.txt').write_bytes(PAYLOAD)
    make_archive(www / 'data.zip', {'data/a.txt': b'alpha', 'data/b.txt': b'beta'})
    (www / 'corrupt.zip').write_bytes((www / 'data.zip').read_bytes()[:-30])
    return www


@pytest.fixture
def register(monkeypatch):
    """Register a DATA_HUB entry for the duration of a test."""
    def _register(name, urls, sha1):
        monkeypatch.setitem(data.DATA_HUB, name, (urls, sha1))
    return _register


@pytest.fixture
def hub(tmp_path, monkeypatch):
    """Point D2L_DATA_HUB at a file; return a function that writes its entries."""
    path = tmp_path / 'hub.json'
    monkeypatch.setenv('D2L_DATA_HUB', str(path))
    return lambda entries: write_hub(path, entries) or path


@contextlib.contextmanager
def http_server(do_get):
    """Serve GET requests with do_get(handler) on 127.0.0.1; yield the base URL."""
    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self):
            with contextlib.suppress(ConnectionError):
                do_get(self)

        def log_message(self, *args):
            pass

    server = http.server.ThreadingHTTPServer(('127.0.0.1', 0), Handler)
    server.daemon_threads = True
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        yield f'http://127.0.0.1:{server.server_address[1]}/'
    finally:
        server.shutdown()
        server.server_close()


def reply(handler, body, length=None, chunked=False):
    """Send a 200 response; length overrides Content-Length."""
    handler.send_response(200)
    if chunked:
        handler.send_header('Transfer-Encoding', 'chunked')
    else:
        handler.send_header('Content-Length', str(len(body) if length is None else length))
    handler.end_headers()
    handler.wfile.write(body)


def sha1sum_bytes(body):
    return hashlib.sha1(body).hexdigest()


def cache():
    return pathlib.Path(os.environ['D2L_DATA_DIR'])


def cache_files():
    """Every file and folder in the cache but the lock files."""
    root = cache()
    return sorted(str(p.relative_to(root)) for p in root.rglob('*')
                  if p.name != '.lock') if root.exists() else []


def closed_port_url():
    """A loopback URL on which nothing listens."""
    with socket.socket() as s:
        s.bind(('127.0.0.1', 0))
        port = s.getsockname()[1]
    return f'http://127.0.0.1:{port}/good.txt'


def run_python(code, env_extra=(), **kwargs):
    """Start a Python process running code with the test's environment."""
    env = dict(os.environ, PYTHONPATH=str(ROOT), **dict(env_extra))
    return subprocess.Popen([sys.executable, '-c', textwrap.dedent(code)], env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, **kwargs)


# Downloads, mirrors and the cache

def test_good_file_is_downloaded_verified_and_cached(www, loopback_server, register):
    url = loopback_server(www) + 'good.txt'
    register('good', url, sha1sum(www / 'good.txt'))
    path = data.download('good')
    assert pathlib.Path(path).read_bytes() == PAYLOAD
    assert cache_files() == ['good', 'good/good.txt']
    (www / 'good.txt').unlink()  # a second call must not need the server
    assert data.download('good') == path


def test_a_progress_bar_is_shown(www, loopback_server, register, capfd):
    register('good', loopback_server(www) + 'good.txt', sha1sum(www / 'good.txt'))
    data.download('good')
    err = capfd.readouterr().err
    assert 'good: 100%' in err and '2.00k/2.00k' in err


def test_wrong_sha1_is_refused_and_leaves_nothing(www, loopback_server, register):
    url = loopback_server(www) + 'good.txt'
    register('good', url, '0' * 40)
    with pytest.raises(data.DataError) as info:
        data.download('good')
    for part in ("'good'", url, 'SHA-1 mismatch', '0' * 40, sha1sum(www / 'good.txt')):
        assert part in str(info.value)
    assert cache_files() == ['good']


def test_404_names_the_url_and_status(www, loopback_server, register):
    url = loopback_server(www) + 'missing.zip'
    register('missing', url, '0' * 40)
    with pytest.raises(data.DataError, match='HTTP status 404') as info:
        data.download('missing')
    assert url in str(info.value)


def test_refused_connection_is_a_clear_error(register):
    url = closed_port_url()
    register('nowhere', url, '0' * 40)
    with pytest.raises(data.DataError, match=f'{url}: connection refused') as info:
        data.download('nowhere')
    assert "'nowhere'" in str(info.value)


def test_mirrors_are_tried_in_order(www, loopback_server, register):
    base = loopback_server(www)
    register('good', (closed_port_url(), base + 'missing.txt', base + 'good.txt'),
             sha1sum(www / 'good.txt'))
    assert pathlib.Path(data.download('good')).read_bytes() == PAYLOAD


def test_a_bad_cached_file_is_replaced(www, loopback_server, register):
    register('good', loopback_server(www) + 'good.txt', sha1sum(www / 'good.txt'))
    (cache() / 'good').mkdir(parents=True)
    (cache() / 'good' / 'good.txt').write_bytes(b'<html>an error page</html>')
    assert pathlib.Path(data.download('good')).read_bytes() == PAYLOAD


def test_a_browser_user_agent_is_sent(register):
    seen = []

    def do_get(handler):
        seen.append(handler.headers['User-Agent'])
        reply(handler, PAYLOAD)

    with http_server(do_get) as base:
        register('good', base + 'good.txt', sha1sum_bytes(PAYLOAD))
        data.download('good')
    assert seen and seen[0].startswith('Mozilla/5.0') and 'python' not in seen[0].lower()


def test_file_urls_work(www, register):
    register('good', (www / 'good.txt').as_uri(), sha1sum(www / 'good.txt'))
    assert pathlib.Path(data.download('good')).read_bytes() == PAYLOAD


def test_datasets_sharing_a_file_name_are_kept_apart(www, loopback_server, register):
    (www / 'v2').mkdir()
    (www / 'v2' / 'good.txt').write_bytes(b'another dataset')
    base = loopback_server(www)
    register('one', base + 'good.txt', sha1sum(www / 'good.txt'))
    register('two', base + 'v2/good.txt', sha1sum(www / 'v2' / 'good.txt'))
    one, two = data.download('one'), data.download('two')
    assert pathlib.Path(one).read_bytes() == PAYLOAD
    assert pathlib.Path(two).read_bytes() == b'another dataset'
    assert data.download('one') == one and pathlib.Path(one).read_bytes() == PAYLOAD


def test_default_cache_is_relative_data_dir(monkeypatch):
    monkeypatch.delenv('D2L_DATA_DIR')
    assert data.data_dir() == os.path.join('..', 'data')


def test_importing_the_module_imports_no_framework():
    code = ('import sys, d2l, d2l.data; '
            'print(sorted(m for m in ("mxnet", "torch", "tensorflow") if m in sys.modules))')
    out = subprocess.run([sys.executable, '-c', code],
                         env=dict(os.environ, PYTHONPATH=str(ROOT)), capture_output=True,
                         text=True, check=True)
    assert out.stdout.strip() == '[]'


# Broken transfers: each moves on to the next mirror; the error names each cause

def test_broken_transfers_are_named_and_the_next_mirror_is_used(register, monkeypatch):
    monkeypatch.setattr(data, 'DOWNLOAD_DEADLINE', 1.5)

    def do_get(handler):
        if handler.path == '/short':  # a body shorter than its Content-Length
            reply(handler, PAYLOAD[:100], length=len(PAYLOAD))
        elif handler.path == '/chunked':  # a chunked body cut short
            reply(handler, b'%x\r\n%s\r\n' % (100, PAYLOAD[:100]), chunked=True)
        elif handler.path == '/status':  # not HTTP at all
            handler.wfile.write(b'garbage\r\n\r\n')
        elif handler.path == '/drip':  # one byte at a time, never done in time
            handler.send_response(200)
            handler.send_header('Content-Length', str(len(PAYLOAD)))
            handler.end_headers()
            for byte in PAYLOAD[:20]:
                handler.wfile.write(bytes([byte]))
                handler.wfile.flush()
                time.sleep(0.25)
        else:
            reply(handler, PAYLOAD)

    with http_server(do_get) as base:
        urls = [base + p for p in ('short', 'chunked', 'status', 'drip')]
        register('flaky', urls + [base + 'good.txt'], sha1sum_bytes(PAYLOAD))
        start = time.monotonic()
        assert pathlib.Path(data.download('flaky')).read_bytes() == PAYLOAD
        assert time.monotonic() - start < 10
        register('broken', urls + [closed_port_url()], sha1sum_bytes(PAYLOAD))
        with pytest.raises(data.DataError) as info:
            data.download('broken')
    lines = str(info.value).splitlines()
    assert "'broken'" in lines[0] and len(lines) == 6
    assert lines[1].startswith(f'  {urls[0]}: truncated after 100 of {len(PAYLOAD)} bytes')
    assert lines[2].startswith(f'  {urls[1]}: truncated after 100 of ? bytes')
    assert lines[3].startswith(f'  {urls[2]}: ConnectionError') and 'garbage' in lines[3]
    assert lines[4].startswith(f'  {urls[3]}: timed out')
    assert lines[5].endswith('connection refused')
    assert cache_files() == ['broken', 'flaky', 'flaky/short']


def test_a_server_that_stalls_times_out(register, monkeypatch):
    monkeypatch.setattr(data, 'DOWNLOAD_DEADLINE', 1)

    def do_get(handler):
        handler.send_response(200)
        handler.send_header('Content-Length', '10')
        handler.end_headers()
        time.sleep(4)

    with http_server(do_get) as base:
        register('stall', base + 'x.bin', '0' * 40)
        start = time.monotonic()
        with pytest.raises(data.DataError, match='x.bin: timed out'):
            data.download('stall')
        assert time.monotonic() - start < 3.5


# Concurrency and leftovers of killed processes

def test_parallel_processes_share_one_download(tmp_path, hub):
    body = make_archive(tmp_path / 'par.zip', {'par/a.txt': os.urandom(300_000)}) and \
        (tmp_path / 'par.zip').read_bytes()
    hits = []

    def do_get(handler):  # slow enough that every process asks before it is done
        hits.append(handler.path)
        handler.send_response(200)
        handler.send_header('Content-Length', str(len(body)))
        handler.end_headers()
        for i in range(0, len(body), 30_000):
            handler.wfile.write(body[i:i + 30_000])
            time.sleep(0.05)

    with http_server(do_get) as base:
        hub({'par': [base + 'par.zip', sha1sum_bytes(body)]})
        start = time.time() + 3
        code = f"""
            import time
            from d2l import data
            time.sleep(max(0, {start} - time.time()))
            path = data.download_extract('par', 'par')
            print(data.sha1sum(path + '/a.txt'))
        """
        procs = [run_python(code) for _ in range(8)]
        results = [(p.wait(60), p.stdout.read().decode(), p.stderr.read().decode())
                   for p in procs]
    expected = sha1sum_bytes(zipfile.ZipFile(io.BytesIO(body)).read('par/a.txt'))
    for code, out, err in results:
        assert code == 0 and out.strip() == expected, err
    assert hits == ['/par.zip']
    assert not [p for p in cache_files() if '.partial-' in p]


def test_leftovers_of_a_killed_download_are_removed(www, loopback_server, tmp_path, hub):
    def do_get(handler):
        handler.send_response(200)
        handler.send_header('Content-Length', str(len(PAYLOAD)))
        handler.end_headers()
        for _ in range(100):
            handler.wfile.write(b'x')
            handler.wfile.flush()
            time.sleep(0.1)

    with http_server(do_get) as base:
        hub({'good': [base + 'good.txt', sha1sum(www / 'good.txt')]})
        proc = run_python("from d2l import data; data.download('good')")
        try:
            deadline = time.monotonic() + 30
            while not list((cache() / 'good').glob('.partial-*')):
                assert time.monotonic() < deadline and proc.poll() is None
                time.sleep(0.1)
        finally:
            proc.send_signal(signal.SIGKILL)
            proc.wait()
    assert list((cache() / 'good').glob('.partial-*'))
    hub({'good': [loopback_server(www) + 'good.txt', sha1sum(www / 'good.txt')]})
    assert pathlib.Path(data.download('good')).read_bytes() == PAYLOAD
    assert cache_files() == ['good', 'good/good.txt']


def test_leftovers_of_a_killed_extraction_are_removed(tmp_path, hub):
    make_archive(tmp_path / 'huge.zip', {f'huge/{i}': bytes(20_000_000) for i in range(5)})
    hub({'huge': [(tmp_path / 'huge.zip').as_uri(), sha1sum(tmp_path / 'huge.zip')]})
    data.download('huge')
    proc = run_python("from d2l import data; data.download_extract('huge')")
    try:
        deadline = time.monotonic() + 30
        while not list((cache() / 'huge').glob('.partial-*')):
            assert time.monotonic() < deadline and proc.poll() is None
            time.sleep(0.005)
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.wait()
    assert list((cache() / 'huge').glob('.partial-*'))
    folder = pathlib.Path(data.download_extract('huge', 'huge'))
    assert [(folder / str(i)).stat().st_size for i in range(5)] == [20_000_000] * 5
    assert not list((cache() / 'huge').glob('.partial-*'))


# Extraction

def test_zip_is_extracted_and_reused(www, loopback_server, register):
    register('data', loopback_server(www) + 'data.zip', sha1sum(www / 'data.zip'))
    folder = pathlib.Path(data.download_extract('data', 'data'))
    assert folder == cache() / 'data' / 'data' / 'data'
    assert (folder / 'a.txt').read_bytes() == b'alpha'
    before = os.stat(folder.parent).st_ino, os.stat(folder / 'a.txt').st_mtime_ns
    (www / 'data.zip').unlink()
    assert pathlib.Path(data.download_extract('data', 'data')) == folder
    assert (os.stat(folder.parent).st_ino, os.stat(folder / 'a.txt').st_mtime_ns) == before


def test_changed_extracted_files_are_extracted_again(www, loopback_server, register):
    register('data', loopback_server(www) + 'data.zip', sha1sum(www / 'data.zip'))
    folder = pathlib.Path(data.download_extract('data', 'data'))
    (www / 'data.zip').unlink()  # re-extraction uses the verified archive
    for change in (lambda: (folder / 'a.txt').write_bytes(b'alp'),
                   lambda: (folder / 'b.txt').write_bytes(b'BETA'),
                   lambda: (folder / 'b.txt').unlink(),
                   lambda: (folder / 'extra.txt').write_bytes(b'?')):
        change()
        assert pathlib.Path(data.download_extract('data', 'data')) == folder
        assert sorted(p.name for p in folder.iterdir()) == ['a.txt', 'b.txt']
        assert (folder / 'a.txt').read_bytes() == b'alpha'
        assert (folder / 'b.txt').read_bytes() == b'beta'


def test_a_new_archive_replaces_the_old_extraction(www, loopback_server, register):
    base = loopback_server(www)
    register('data', base + 'data.zip', sha1sum(www / 'data.zip'))
    data.download_extract('data')
    make_archive(www / 'data.zip', {'data/a.txt': b'ALPHA'})
    register('data', base + 'data.zip', sha1sum(www / 'data.zip'))
    folder = pathlib.Path(data.download_extract('data', 'data'))
    assert (folder / 'a.txt').read_bytes() == b'ALPHA'
    assert not (folder / 'b.txt').exists()


def tar_gz(members):
    """Bytes of a .tar.gz holding {TarInfo: bytes or None}."""
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode='w:gz') as tar:
        for info, body in members.items():
            info.size = len(body) if body is not None else 0
            tar.addfile(info, io.BytesIO(body) if body is not None else None)
    return buffer.getvalue()


def test_tar_gz_is_extracted(www, loopback_server, register):
    (www / 'data.tar.gz').write_bytes(tar_gz({tarfile.TarInfo('data/c.txt'): b'gamma'}))
    register('tgz', loopback_server(www) + 'data.tar.gz', sha1sum(www / 'data.tar.gz'))
    folder = pathlib.Path(data.download_extract('tgz', 'data'))
    assert (folder / 'c.txt').read_bytes() == b'gamma'


def test_corrupt_archive_is_refused_and_kept(www, loopback_server, register):
    register('corrupt', loopback_server(www) + 'corrupt.zip', sha1sum(www / 'corrupt.zip'))
    with pytest.raises(data.DataError, match='corrupt.zip.*is kept'):
        data.download_extract('corrupt')
    assert cache_files() == ['corrupt', 'corrupt/corrupt.zip']


def test_a_local_extraction_failure_keeps_the_verified_archive(tmp_path, hub):
    make_archive(tmp_path / 'big.zip', {'big/zeros': bytes(2_000_000)})
    hits = []

    def do_get(handler):
        hits.append(handler.path)
        reply(handler, (tmp_path / 'big.zip').read_bytes())

    with http_server(do_get) as base:
        hub({'big': [base + 'big.zip', sha1sum(tmp_path / 'big.zip')]})
        # A process that may write no file larger than 1 MB: the disk is "full".
        proc = run_python("""
            import resource, signal
            from d2l import data
            data.download('big')
            signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
            resource.setrlimit(resource.RLIMIT_FSIZE, (1_000_000, 1_000_000))
            data.download_extract('big')
        """)
        proc.wait(60)
        err = proc.stderr.read().decode()
        assert proc.returncode == 1 and 'File too large' in err and 'is kept' in err, err
        assert cache_files() == ['big', 'big/big.zip']
        folder = pathlib.Path(data.download_extract('big', 'big'))
    assert (folder / 'zeros').stat().st_size == 2_000_000
    assert hits == ['/big.zip']


def test_an_archive_may_not_expand_beyond_the_limit(www, loopback_server, register, monkeypatch):
    monkeypatch.setattr(data, 'MAX_EXTRACTED_BYTES', 1000)
    make_archive(www / 'bomb.zip', {'a': bytes(600), 'b': bytes(600)})
    (www / 'bomb.tar.gz').write_bytes(tar_gz({tarfile.TarInfo('a'): bytes(1001)}))
    base = loopback_server(www)
    for name in ('bomb.zip', 'bomb.tar.gz'):
        register('bomb', base + name, sha1sum(www / name))
        with pytest.raises(data.DataError, match='refusing to expand to 1[02]0[01] bytes'):
            data.download_extract('bomb')
        assert cache_files() == ['bomb', f'bomb/{name}']
        (cache() / 'bomb' / name).unlink()


def test_an_archive_that_understates_its_size_is_refused(www, loopback_server, register):
    make_archive(www / 'liar.zip', {'big': bytes(1_000_000)})
    raw = bytearray((www / 'liar.zip').read_bytes())
    struct.pack_into('<I', raw, 22, 10)  # the local header's uncompressed size
    struct.pack_into('<I', raw, raw.rfind(b'PK\x01\x02') + 24, 10)  # the central one's
    (www / 'liar.zip').write_bytes(raw)
    register('liar', loopback_server(www) + 'liar.zip', sha1sum(www / 'liar.zip'))
    with pytest.raises(data.DataError, match='liar.zip.*Bad CRC-32'):
        data.download_extract('liar')
    assert cache_files() == ['liar', 'liar/liar.zip']


@pytest.mark.parametrize('member', ['../evil.txt', 'data/../../evil.txt', '/tmp/evil.txt',
                                    'C:/evil.txt', '..\\evil.txt', 'data/../ok.txt'])
@pytest.mark.parametrize('kind', ['zip', 'tar.gz'])
def test_members_that_leave_the_folder_are_refused(www, loopback_server, register, member, kind):
    if kind == 'zip':
        make_archive(www / 'slip.zip', {'data/ok.txt': b'ok', member: b'evil'})
    else:
        (www / 'slip.tar.gz').write_bytes(tar_gz({tarfile.TarInfo('data/ok.txt'): b'ok',
                                                  tarfile.TarInfo(member): b'evil'}))
    register('slip', loopback_server(www) + f'slip.{kind}', sha1sum(www / f'slip.{kind}'))
    with pytest.raises(data.DataError,
                       match=re.escape(f'slip.{kind}: refusing the member {member!r}')):
        data.download_extract('slip')
    assert cache_files() == ['slip', f'slip/slip.{kind}']


@pytest.mark.parametrize('kind, target', [(tarfile.SYMTYPE, '/etc/passwd'),
                                          (tarfile.SYMTYPE, 'ok.txt'),
                                          (tarfile.LNKTYPE, '/etc/passwd'),
                                          (tarfile.LNKTYPE, 'data/ok.txt'),
                                          (tarfile.CHRTYPE, ''), (tarfile.FIFOTYPE, '')])
def test_tar_links_and_devices_are_refused(www, loopback_server, register, kind, target):
    link = tarfile.TarInfo('data/link')
    link.type, link.linkname = kind, target
    (www / 'links.tar.gz').write_bytes(tar_gz({tarfile.TarInfo('data/ok.txt'): b'ok',
                                               link: None}))
    register('links', loopback_server(www) + 'links.tar.gz', sha1sum(www / 'links.tar.gz'))
    with pytest.raises(data.DataError, match="refusing the member 'data/link'"):
        data.download_extract('links')
    assert cache_files() == ['links', 'links/links.tar.gz']


def test_tar_ownership_and_modes_are_not_taken_from_the_archive(www, loopback_server, register):
    member = tarfile.TarInfo('data/run.sh')
    member.mode, member.uid, member.gid = 0o4700, 4321, 4321  # setuid, private to 4321
    (www / 'modes.tar.gz').write_bytes(tar_gz({member: b'#!/bin/sh\n'}))
    register('modes', loopback_server(www) + 'modes.tar.gz', sha1sum(www / 'modes.tar.gz'))
    info = (pathlib.Path(data.download_extract('modes', 'data')) / 'run.sh').stat()
    umask = os.umask(0)
    os.umask(umask)
    assert (stat.S_IMODE(info.st_mode), info.st_uid) == (0o666 & ~umask, os.geteuid())


def test_a_python_without_tar_filters_says_so(www, loopback_server, register, monkeypatch):
    monkeypatch.delattr(tarfile, 'data_filter')
    (www / 'data.tar.gz').write_bytes(tar_gz({tarfile.TarInfo('data/c.txt'): b'gamma'}))
    register('tgz', loopback_server(www) + 'data.tar.gz', sha1sum(www / 'data.tar.gz'))
    with pytest.raises(data.DataError, match=r'data.tar.gz: extracting a tar archive safely '
                       r'needs tarfile.data_filter \(Python 3.8.17, .*not Python 3\.'):
        data.download_extract('tgz')
    assert cache_files() == ['tgz', 'tgz/data.tar.gz']


def test_zip_links_are_written_as_regular_files(www, loopback_server, register):
    with zipfile.ZipFile(www / 'links.zip', 'w') as zf:
        link = zipfile.ZipInfo('data/link')
        link.external_attr = (stat.S_IFLNK | 0o777) << 16
        zf.writestr(link, '/etc/passwd')
    register('links', loopback_server(www) + 'links.zip', sha1sum(www / 'links.zip'))
    link = pathlib.Path(data.download_extract('links', 'data')) / 'link'
    assert not link.is_symlink() and link.read_bytes() == b'/etc/passwd'


def test_extract_folder_must_exist_inside(www, loopback_server, register):
    register('data', loopback_server(www) + 'data.zip', sha1sum(www / 'data.zip'))
    with pytest.raises(data.DataError, match="has no folder 'nope'"):
        data.download_extract('data', 'nope')
    with pytest.raises(data.DataError, match='refusing'):
        data.download_extract('data', '../..')


# Names from URLs, hub files and callers never leave the dataset's folder

@pytest.mark.parametrize('file_name', ['..zip', '...zip', '.zip', '..', '.', '%2e%2e.zip',
                                       '', '.hidden.zip'])
def test_url_file_names_cannot_address_the_cache(www, hub, loopback_server, file_name):
    cache().mkdir()
    (cache() / 'precious.txt').write_bytes(b'keep me')
    make_archive(www / 'x.zip', {'a.txt': b'a'})
    hub({'evil': [loopback_server(www) + 'sub/' + file_name, sha1sum(www / 'x.zip')]})
    for fetch in (data.download, data.download_extract):
        with pytest.raises(data.DataError, match='does not end in a usable file name'):
            fetch('evil')
    assert (cache() / 'precious.txt').read_bytes() == b'keep me'
    assert cache_files() == ['precious.txt']


@pytest.mark.parametrize('name', ['..', '.', '', 'a/b', '../x', '/abs', '.hidden', 'a\\b'])
def test_dataset_names_are_validated(register, name):
    register(name, 'http://127.0.0.1:9/x.zip', '0' * 40)
    with pytest.raises(data.DataError, match='bad dataset name'):
        data.download(name)
    assert not cache().exists()


# Configuration

def test_data_hub_file_overrides_an_entry(www, loopback_server, register, hub):
    register('good', 'http://127.0.0.1:9/never-used.txt', '1' * 40)
    hub({})
    assert not data.hub_overridden('good')
    hub({'good': [loopback_server(www) + 'good.txt', sha1sum(www / 'good.txt')]})
    assert data.hub_overridden('good')
    assert data.hub_entry('good')[1] == sha1sum(www / 'good.txt')
    assert pathlib.Path(data.download('good')).read_bytes() == PAYLOAD


@pytest.mark.parametrize('entry, problem', [
    ('http://example.invalid/x.zip', r'should be \["url", "sha1"\]'),
    ([5, '0' * 40], 'a string or a non-empty list, got 5'),
    ([None, '0' * 40], 'got None'),
    (['', '0' * 40], "non-empty string, got ''"),
    ([[], '0' * 40], 'non-empty list'),
    (['x.zip', '0' * 40], "'x.zip' is not an absolute"),
    (['ftp://host/x.zip', '0' * 40], 'not an absolute http'),
    (['http://host:port/x.zip', '0' * 40], "bad URL 'http://host:port/x.zip'"),
    (['http://host:99999/x.zip', '0' * 40], 'bad URL'),
    (['http://host/x.zip', 'abc'], "40 hex digits, got 'abc'"),
    (['http://host/x.zip', 'g' * 40], '40 hex digits'),
    (['http://host/x.zip', None], '40 hex digits, got None'),
])
def test_a_malformed_hub_entry_is_named(hub, entry, problem):
    path = hub({'good': entry})
    with pytest.raises(data.DataError, match=problem) as info:
        data.download('good')
    assert f"D2L_DATA_HUB file {path}, dataset 'good'" in str(info.value)


def test_a_malformed_hub_file_is_named(hub, tmp_path, monkeypatch):
    path = hub([['good', 'http://host/x.zip', '0' * 40]])
    with pytest.raises(data.DataError, match=f'{path}: the top level should be an object'):
        data.download('good')
    path.write_text('not json')
    with pytest.raises(data.DataError, match=f'cannot read the D2L_DATA_HUB file {path}'):
        data.download('good')
    monkeypatch.setenv('D2L_DATA_HUB', str(tmp_path / 'missing.json'))
    with pytest.raises(data.DataError, match='missing.json.*No such file'):
        data.hub_overridden('good')


def test_a_malformed_data_hub_entry_is_named(register):
    register('good', 'http://host/x.zip', 'not-a-sha1')
    with pytest.raises(data.DataError, match=r"d2l.DATA_HUB\['good'\]: the SHA-1"):
        data.download('good')


def test_unknown_dataset_is_named():
    with pytest.raises(data.DataError, match="'no-such-data'"):
        data.download('no-such-data')


def test_an_empty_data_dir_is_refused(monkeypatch, register):
    monkeypatch.setenv('D2L_DATA_DIR', '')
    register('good', 'http://127.0.0.1:9/x.txt', '0' * 40)
    with pytest.raises(data.DataError, match='D2L_DATA_DIR is set but empty'):
        data.download('good')


# A read-only cache. As root, file modes stop no write, so the cache is then
# bind-mounted read-only, or, where mounting is not allowed (a container), every
# write under it is made to fail as the kernel would fail it.

WRITE_FLAGS = os.O_WRONLY | os.O_RDWR | os.O_CREAT | os.O_TRUNC | os.O_APPEND


@contextlib.contextmanager
def refused_writes(folder, error):
    """Make each write under folder raise OSError(error), as the kernel would."""
    root = os.path.abspath(folder)

    def guard(func, writes=lambda *args, **kwargs: True):
        def guarded(path, *args, **kwargs):
            name = '' if isinstance(path, int) else os.path.abspath(os.fsdecode(path))
            if (name == root or name.startswith(root + os.sep)) and writes(*args, **kwargs):
                raise OSError(error, os.strerror(error), name)
            return func(path, *args, **kwargs)
        return guarded

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(os, 'open', guard(os.open, lambda flags, *a, **k: flags & WRITE_FLAGS))
        opened = guard(io.open, lambda mode='r', *a, **k: bool(set(mode) & set('wax+')))
        patch.setattr(io, 'open', opened)
        patch.setattr(builtins, 'open', opened)
        for name in ('mkdir', 'rmdir', 'remove', 'unlink', 'rename', 'replace', 'chmod',
                     'utime', 'truncate'):
            patch.setattr(os, name, guard(getattr(os, name)))
        yield


@contextlib.contextmanager
def read_only_mount(folder):
    """Bind-mount folder read-only over itself, or refuse its writes with EROFS."""
    mount = ['mount', '--bind', str(folder), str(folder)]
    if os.geteuid() != 0 or subprocess.run(mount, capture_output=True).returncode:
        with refused_writes(folder, errno.EROFS):
            yield
        return
    try:
        subprocess.run(['mount', '-o', 'remount,bind,ro', str(folder)], check=True)
        yield
    finally:
        subprocess.run(['umount', str(folder)], check=True)


@contextlib.contextmanager
def without_write_permission(folder):
    """Clear the write bits under folder, or, as root, refuse its writes with EACCES."""
    if os.geteuid() == 0:
        with refused_writes(folder, errno.EACCES):
            yield
        return
    modes = {p: p.stat().st_mode for p in [folder, *folder.rglob('*')]}
    for p in modes:
        p.chmod(modes[p] & ~0o222)
    try:
        yield
    finally:
        for p, mode in modes.items():
            p.chmod(mode)


def tree(folder):
    """Every path under folder with its size and modification time."""
    return sorted((str(p), p.lstat().st_size, p.lstat().st_mtime_ns) for p in folder.rglob('*'))


@pytest.fixture(params=['read-only file system', 'no write permission'])
def read_only(request):
    """Return a context manager that makes a folder read-only and checks nothing changed."""
    make = read_only_mount if request.param == 'read-only file system' \
        else without_write_permission

    @contextlib.contextmanager
    def read_only(folder):
        before = tree(folder)
        with make(folder):
            with pytest.raises(OSError):  # it really is read-only
                (folder / 'probe').write_bytes(b'')
            yield
        assert tree(folder) == before
    return read_only


def test_a_populated_read_only_cache_is_used(www, loopback_server, register, read_only):
    register('data', loopback_server(www) + 'data.zip', sha1sum(www / 'data.zip'))
    folder = pathlib.Path(data.download_extract('data', 'data'))
    path = data.download('data')
    (www / 'data.zip').unlink()  # nothing could be downloaded again
    with read_only(cache()):
        assert pathlib.Path(data.download_extract('data', 'data')) == folder
        assert data.download('data') == path
        assert (folder / 'a.txt').read_bytes() == b'alpha'


@pytest.mark.parametrize('populated', ['no cache folder', 'nothing', 'a folder without the dataset',
                                       'the archive alone', 'a changed extraction'])
def test_an_empty_or_incomplete_read_only_cache_says_what_to_do(
        www, loopback_server, register, read_only, tmp_path, monkeypatch, populated):
    register('data', loopback_server(www) + 'data.zip', sha1sum(www / 'data.zip'))
    shared = tmp_path / 'shared'
    monkeypatch.setenv('D2L_DATA_DIR', str(shared / 'cache'))
    shared.mkdir()
    if populated != 'no cache folder':
        cache().mkdir()
    if populated == 'a folder without the dataset':
        (cache() / 'data').mkdir()
    if populated == 'the archive alone':
        data.download('data')
    if populated == 'a changed extraction':
        (pathlib.Path(data.download_extract('data', 'data')) / 'a.txt').write_bytes(b'?')
    has_archive = populated in ('the archive alone', 'a changed extraction')
    with read_only(shared):
        calls = [lambda: data.download_extract('data', 'data')]
        for call in calls if has_archive else calls + [lambda: data.download('data')]:
            with pytest.raises(data.DataError, match=(
                    f'the dataset cache {cache() / "data"} cannot be written and does '
                    "not hold a verified copy of 'data': point D2L_DATA_DIR at a")):
                call()
        if has_archive:  # the verified archive alone is still served
            assert data.download('data') == str(cache() / 'data' / 'data.zip')
