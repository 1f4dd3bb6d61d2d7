"""The download machinery against a loopback HTTP server the tests start."""

import http.server
import io
import os
import pathlib
import socket
import tarfile
import threading

import pytest

from d2l import mxnet as d2l
from offline_hub import make_archive, sha1sum, write_hub

PAYLOAD = b'the quick brown fox\n' * 100


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
        monkeypatch.setitem(d2l.DATA_HUB, name, (urls, sha1))
    return _register


def cache_files():
    """Every file left in the cache directory, hidden ones included."""
    root = pathlib.Path(os.environ['D2L_DATA_DIR'])
    return sorted(str(p.relative_to(root)) for p in root.rglob('*')) if root.exists() else []


def closed_port_url():
    """A loopback URL on which nothing listens."""
    with socket.socket() as s:
        s.bind(('127.0.0.1', 0))
        port = s.getsockname()[1]
    return f'http://127.0.0.1:{port}/good.txt'


def test_good_file_is_downloaded_verified_and_cached(www, loopback_server, register):
    url = loopback_server(www) + 'good.txt'
    register('good', url, sha1sum(www / 'good.txt'))
    path = d2l.download('good')
    assert pathlib.Path(path).read_bytes() == PAYLOAD
    assert cache_files() == ['good.txt']
    (www / 'good.txt').unlink()  # a second call must not need the server
    assert d2l.download('good') == path


def test_wrong_sha1_is_refused_and_leaves_nothing(www, loopback_server, register):
    url = loopback_server(www) + 'good.txt'
    register('good', url, '0' * 40)
    with pytest.raises(d2l.DataError) as info:
        d2l.download('good')
    message = str(info.value)
    for part in ("'good'", url, '0' * 40, sha1sum(www / 'good.txt')):
        assert part in message
    assert cache_files() == []


def test_404_names_the_url(www, loopback_server, register):
    url = loopback_server(www) + 'missing.zip'
    register('missing', url, '0' * 40)
    with pytest.raises(d2l.DataError, match='404') as info:
        d2l.download('missing')
    assert url in str(info.value)
    assert cache_files() == []


def test_refused_connection_is_a_clear_error(register):
    url = closed_port_url()
    register('nowhere', url, '0' * 40)
    with pytest.raises(d2l.DataError, match='refused') as info:
        d2l.download('nowhere')
    assert url in str(info.value) and "'nowhere'" in str(info.value)


def test_mirrors_are_tried_in_order(www, loopback_server, register):
    base = loopback_server(www)
    register('good', (closed_port_url(), base + 'missing.txt', base + 'good.txt'),
             sha1sum(www / 'good.txt'))
    assert pathlib.Path(d2l.download('good')).read_bytes() == PAYLOAD


def test_a_bad_cached_file_is_replaced(www, loopback_server, register):
    register('good', loopback_server(www) + 'good.txt', sha1sum(www / 'good.txt'))
    cache = pathlib.Path(os.environ['D2L_DATA_DIR'])
    cache.mkdir()
    (cache / 'good.txt').write_bytes(b'<html>an error page</html>')
    assert pathlib.Path(d2l.download('good')).read_bytes() == PAYLOAD


def test_a_browser_user_agent_is_sent(www, register):
    seen = []

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self):
            seen.append(self.headers['User-Agent'])
            self.send_response(200)
            self.end_headers()
            self.wfile.write(PAYLOAD)

        def log_message(self, *args):
            pass

    server = http.server.HTTPServer(('127.0.0.1', 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        register('good', f'http://127.0.0.1:{server.server_address[1]}/good.txt',
                 sha1sum(www / 'good.txt'))
        d2l.download('good')
    finally:
        server.shutdown()
        server.server_close()
    assert seen and seen[0].startswith('Mozilla/5.0') and 'Python' not in seen[0]


def test_file_urls_work(www, register):
    register('good', (www / 'good.txt').as_uri(), sha1sum(www / 'good.txt'))
    assert pathlib.Path(d2l.download('good')).read_bytes() == PAYLOAD


def test_zip_is_extracted_and_reused(www, loopback_server, register, monkeypatch):
    register('data', loopback_server(www) + 'data.zip', sha1sum(www / 'data.zip'))
    folder = pathlib.Path(d2l.download_extract('data', 'data'))
    assert (folder / 'a.txt').read_bytes() == b'alpha'
    calls = []
    monkeypatch.setattr(d2l.zipfile, 'ZipFile', lambda *a: calls.append(a))
    assert pathlib.Path(d2l.download_extract('data', 'data')) == folder
    assert calls == []  # the stamped extraction was reused


def test_a_new_archive_replaces_the_old_extraction(www, loopback_server, register):
    base = loopback_server(www)
    register('data', base + 'data.zip', sha1sum(www / 'data.zip'))
    d2l.download_extract('data')
    make_archive(www / 'data.zip', {'data/a.txt': b'ALPHA'})
    register('data', base + 'data.zip', sha1sum(www / 'data.zip'))
    folder = pathlib.Path(d2l.download_extract('data', 'data'))
    assert (folder / 'a.txt').read_bytes() == b'ALPHA'
    assert not (folder / 'b.txt').exists()


def test_tar_gz_is_extracted(tmp_path, www, loopback_server, register):
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode='w:gz') as tar:
        info = tarfile.TarInfo('data/c.txt')
        info.size = 5
        tar.addfile(info, io.BytesIO(b'gamma'))
    (www / 'data.tar.gz').write_bytes(buffer.getvalue())
    register('tgz', loopback_server(www) + 'data.tar.gz', sha1sum(www / 'data.tar.gz'))
    folder = pathlib.Path(d2l.download_extract('tgz', 'data'))
    assert (folder / 'c.txt').read_bytes() == b'gamma'


def test_corrupt_archive_is_refused_and_removed(www, loopback_server, register):
    register('corrupt', loopback_server(www) + 'corrupt.zip', sha1sum(www / 'corrupt.zip'))
    with pytest.raises(d2l.DataError, match='corrupt.zip'):
        d2l.download_extract('corrupt')
    assert cache_files() == []


def test_data_hub_file_overrides_an_entry(www, loopback_server, register, monkeypatch, tmp_path):
    register('good', 'http://127.0.0.1:9/never-used.txt', '1' * 40)
    assert not d2l.hub_overridden('good')
    hub = tmp_path / 'hub.json'
    write_hub(hub, {'good': [loopback_server(www) + 'good.txt', sha1sum(www / 'good.txt')]})
    monkeypatch.setenv('D2L_DATA_HUB', str(hub))
    assert d2l.hub_overridden('good')
    assert pathlib.Path(d2l.download('good')).read_bytes() == PAYLOAD


def test_a_malformed_data_hub_file_is_named(monkeypatch, tmp_path):
    hub = tmp_path / 'hub.json'
    hub.write_text('{"good": "http://example.invalid/x.zip"}')
    monkeypatch.setenv('D2L_DATA_HUB', str(hub))
    with pytest.raises(d2l.DataError, match=r'hub\.json.*\["url", "sha1"\]'):
        d2l.download('good')
    hub.write_text('not json')
    with pytest.raises(d2l.DataError, match='cannot read the D2L_DATA_HUB file'):
        d2l.download('good')


def test_unknown_dataset_is_named():
    with pytest.raises(d2l.DataError, match="'no-such-data'"):
        d2l.download('no-such-data')


def test_default_cache_is_relative_data_dir(monkeypatch):
    monkeypatch.delenv('D2L_DATA_DIR')
    assert d2l.data_dir() == os.path.join('..', 'data')

