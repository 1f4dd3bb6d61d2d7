"""Download, verify, cache and extract datasets; safe for parallel processes.

Each dataset lives in its own folder ``<cache>/<name>/``: the verified file,
its extraction, a manifest of the extracted files' SHA-1s and a lock file.
"""

import contextlib
import errno
import hashlib
import json
import os
import platform
import re
import shutil
import tarfile
import tempfile
import time
import urllib.parse
import urllib.request
import zipfile

import filelock
import requests
import tqdm
import urllib3

DATA_HUB = {}
USER_AGENT = ('Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 '
              '(KHTML, like Gecko) Chrome/120.0 Safari/537.36')
DOWNLOAD_DEADLINE = 15 * 60  # seconds one download from one mirror may take
READ_TIMEOUT = 60  # seconds one read from the network may wait
MAX_EXTRACTED_BYTES = 2 << 30  # what one archive may expand to
SAFE_NAME = re.compile(r'[A-Za-z0-9][A-Za-z0-9._-]*')
ARCHIVE = re.compile(r'(.+?)\.(zip|tar|tar\.gz|tgz|tar\.bz2|tar\.xz)')
PARTIAL = '.partial-'  # prefix of every temporary file and folder


class DataError(RuntimeError):
    """A dataset could not be downloaded, verified or read."""


def sha1sum(path):
    """Return the hex SHA-1 digest of a file."""
    digest = hashlib.sha1()
    with open(path, 'rb') as f:
        while chunk := f.read(1 << 20):
            digest.update(chunk)
    return digest.hexdigest()


def data_dir():
    """Return the cache directory: $D2L_DATA_DIR, or ../data."""
    path = os.environ.get('D2L_DATA_DIR', os.path.join('..', 'data'))
    if not path:
        raise DataError('D2L_DATA_DIR is set but empty: unset it or name a directory')
    return path


def _check_url(url, where):
    """Raise DataError unless url is an absolute http(s):// or file:// URL."""
    if not isinstance(url, str) or not url:
        raise DataError(f'{where}: a URL should be a non-empty string, got {url!r}')
    try:
        parts = urllib.parse.urlsplit(url)
        usable = (parts.scheme in ('http', 'https') and parts.hostname and parts.port != 0
                  or parts.scheme == 'file' and parts.path.startswith('/'))
    except ValueError as e:  # e.g. a port that is not a number from 1 to 65535
        raise DataError(f'{where}: bad URL {url!r}: {e}') from None
    if not usable:
        raise DataError(f'{where}: {url!r} is not an absolute http(s):// or file:// URL')
    return url


def _check_entry(entry, where):
    """Validate a (urls, sha1) entry; return (urls tuple, lowercase sha1)."""
    if not (isinstance(entry, (list, tuple)) and len(entry) == 2):
        raise DataError(f'{where}: should be ["url", "sha1"], got {entry!r}')
    urls, sha1 = entry
    urls = (urls,) if isinstance(urls, str) else urls
    if not (isinstance(urls, (list, tuple)) and urls):
        raise DataError(f'{where}: the URLs should be a string or a non-empty list, got {urls!r}')
    if not (isinstance(sha1, str) and re.fullmatch(r'[0-9a-fA-F]{40}', sha1)):
        raise DataError(f'{where}: the SHA-1 should be 40 hex digits, got {sha1!r}')
    return tuple(_check_url(url, where) for url in urls), sha1.lower()


def _hub_override(name):
    """Return the D2L_DATA_HUB file's raw entry for a dataset and the file, or None."""
    path = os.environ.get('D2L_DATA_HUB')
    if not path:
        return None
    try:
        with open(path, encoding='utf-8') as f:
            hub = json.load(f)
    except (OSError, ValueError) as e:
        raise DataError(f'cannot read the D2L_DATA_HUB file {path}: {e}') from None
    if not isinstance(hub, dict):
        raise DataError(f'D2L_DATA_HUB file {path}: the top level should be an object '
                        f'{{"name": ["url", "sha1"]}}, got a {type(hub).__name__}')
    return None if name not in hub else (hub[name], path)


def hub_overridden(name):
    """Return whether the D2L_DATA_HUB file overrides a dataset's entry."""
    return _hub_override(name) is not None


def hub_entry(name):
    """Return (mirror URLs, SHA-1) of a dataset, honoring D2L_DATA_HUB."""
    if not (isinstance(name, str) and SAFE_NAME.fullmatch(name)):
        raise DataError(f'bad dataset name {name!r}: use letters, digits, ".", "_" '
                        'and "-", starting with a letter or digit')
    override = _hub_override(name)
    if override is not None:
        return _check_entry(override[0], f'D2L_DATA_HUB file {override[1]}, dataset {name!r}')
    if name not in DATA_HUB:
        raise DataError(f'unknown dataset {name!r}: it is neither in d2l.DATA_HUB '
                        'nor in the D2L_DATA_HUB file')
    return _check_entry(DATA_HUB[name], f'd2l.DATA_HUB[{name!r}]')


def _file_name(name, url):
    """The cache file name of a dataset: the last part of its first URL."""
    base = urllib.parse.unquote(urllib.parse.urlsplit(url).path.rsplit('/', 1)[-1])
    if not SAFE_NAME.fullmatch(base):
        raise DataError(f'dataset {name!r}: the URL {url} does not end in a usable '
                        f'file name (letters, digits, ".", "_", "-"), got {base!r}')
    return base


@contextlib.contextmanager
def _locked(folder):
    """Hold a folder's lock, removing what killed processes left; yield whether it is writable."""
    # A read-only folder (a shared or mounted cache) is used as it is, without a
    # lock: no process can change it.
    lock = filelock.FileLock(os.path.join(folder, '.lock'))
    try:
        os.makedirs(folder, exist_ok=True)
        lock.acquire()
    except OSError as e:
        if e.errno not in (errno.EROFS, errno.EACCES, errno.EPERM):
            raise
        lock = None
    if lock is None:
        yield False
        return
    try:
        for entry in os.listdir(folder):
            if entry.startswith(PARTIAL):
                path = os.path.join(folder, entry)
                shutil.rmtree(path) if os.path.isdir(path) else os.remove(path)
        yield True
    finally:
        lock.release()


def _read_only(folder, name):
    """The error for a cache folder that cannot be written and lacks a dataset."""
    return DataError(f'the dataset cache {folder} cannot be written and does not '
                     f'hold a verified copy of {name!r}: point D2L_DATA_DIR at a '
                     'writable directory, or fill this one where it is writable')


def _transfer(name, url, out):
    """Write the bytes at url to the open file out, within DOWNLOAD_DEADLINE."""
    if url.startswith('file:'):
        with open(urllib.request.url2pathname(urllib.parse.urlsplit(url).path), 'rb') as f:
            shutil.copyfileobj(f, out)
        return
    deadline = time.monotonic() + DOWNLOAD_DEADLINE
    timeout = min(READ_TIMEOUT, DOWNLOAD_DEADLINE)
    with requests.get(url, headers={'User-Agent': USER_AGENT}, stream=True,
                      timeout=timeout) as response:
        response.raise_for_status()
        size = int(response.headers.get('Content-Length', 0)) or None
        with tqdm.tqdm(total=size, unit='B', unit_scale=True, desc=name) as bar:
            try:
                while chunk := response.raw.read1(1 << 16, decode_content=True):
                    if time.monotonic() > deadline:
                        raise DataError(f'timed out: not done after {DOWNLOAD_DEADLINE} s')
                    out.write(chunk)
                    bar.update(len(chunk))
            except urllib3.exceptions.ReadTimeoutError:
                raise DataError(f'timed out: no data for {timeout} s') from None
            except urllib3.exceptions.ProtocolError as e:
                raise DataError(f'truncated after {bar.n} of {size or "?"} bytes: {e}') from None


def _reason(e):
    """Say in a few words why a transfer failed."""
    if isinstance(e, requests.HTTPError):
        return f'HTTP status {e.response.status_code} {e.response.reason}'
    if isinstance(e, requests.Timeout):
        return f'timed out: {e}'
    if isinstance(e, requests.ConnectionError) and 'refused' in str(e):
        return 'connection refused'
    return str(e) if isinstance(e, DataError) else f'{type(e).__name__}: {e}'


def _download_locked(name, urls, sha1, path, writable):
    """Make path a verified copy of the dataset's file; the caller holds the lock."""
    if os.path.exists(path) and sha1sum(path) == sha1:
        return path
    if not writable:
        raise _read_only(os.path.dirname(path), name)
    failures = []
    for url in urls:
        fd, tmp = tempfile.mkstemp(dir=os.path.dirname(path), prefix=PARTIAL)
        try:
            with os.fdopen(fd, 'wb') as out:
                _transfer(name, url, out)
            got = sha1sum(tmp)
            if got != sha1:
                raise DataError(f'SHA-1 mismatch: expected {sha1}, got {got}')
            os.replace(tmp, path)
            return path
        except (OSError, DataError, requests.RequestException, urllib3.exceptions.HTTPError) as e:
            failures.append(f'\n  {url}: {_reason(e)}')
        finally:
            if os.path.exists(tmp):
                os.remove(tmp)
    raise DataError(f'cannot download dataset {name!r} (expected SHA-1 {sha1}) '
                    f'from any mirror:{"".join(failures)}')


def download(name, cache_dir=None):
    """Download a dataset's file into <cache>/<name>/, verify it, return its path."""
    urls, sha1 = hub_entry(name)
    folder = os.path.join(cache_dir or data_dir(), name)
    path = os.path.join(folder, _file_name(name, urls[0]))
    with _locked(folder) as writable:
        return _download_locked(name, urls, sha1, path, writable)


def _inside(root, member, archive):
    """Return root/member, refusing names that could leave root."""
    parts = member.split('/')
    if member.startswith('/') or re.match(r'[A-Za-z]:', member) or '..' in parts or '\\' in member:
        raise DataError(f'{archive}: refusing the member {member!r}: it could be written '
                        'outside the extraction folder')
    return os.path.join(root, *[p for p in parts if p not in ('', '.')])


def _check_members(archive, members):
    """Refuse unsafe (name, declared size, is file or folder) members before any is written."""
    for member, _, plain in members:
        _inside('', member, archive)
        if not plain:
            raise DataError(f'{archive}: refusing the member {member!r}: only regular '
                            'files and folders are allowed, not links or devices')
    # zipfile and tarfile never write more than a member's declared size
    declared = sum(size for _, size, _ in members)
    if declared > MAX_EXTRACTED_BYTES:
        raise DataError(f'{archive}: refusing to expand to {declared} bytes '
                        f'(MAX_EXTRACTED_BYTES is {MAX_EXTRACTED_BYTES})')


def _tar_filter(member, path):
    """Apply tarfile's 'data' filter, leaving file modes to the umask as for zip members."""
    return tarfile.data_filter(member, path).replace(mode=None, deep=False)


def _extract(archive, root):
    """Extract the checked members of a zip or tar archive into the new folder root."""
    if archive.endswith('.zip'):
        with zipfile.ZipFile(archive) as zf:  # it writes links as regular files
            _check_members(archive, [(m.filename, m.file_size, True) for m in zf.infolist()])
            zf.extractall(root)
        return
    if not hasattr(tarfile, 'data_filter'):
        raise DataError(f'{archive}: extracting a tar archive safely needs tarfile.data_filter '
                        f'(Python 3.8.17, 3.9.17, 3.10.12, 3.11.4 or newer), '
                        f'not Python {platform.python_version()}')
    with tarfile.open(archive) as tf:
        members = tf.getmembers()
        _check_members(archive, [(m.name, m.size, m.isfile() or m.isdir()) for m in members])
        tf.extractall(root, members, filter=_tar_filter)


def _file_hashes(root):
    """Map each file under root (relative path) to its SHA-1."""
    return {os.path.relpath(os.path.join(d, f), root): sha1sum(os.path.join(d, f))
            for d, _, files in os.walk(root) for f in files}


def _extract_locked(name, archive, sha1, target, writable):
    """Make target a fresh extraction of the verified archive; the caller holds the lock."""
    manifest = os.path.join(os.path.dirname(target), '.manifest.json')
    try:
        with open(manifest, encoding='utf-8') as f:
            if json.load(f) == {'archive': sha1, 'files': _file_hashes(target)}:
                return
    except (OSError, ValueError):
        pass  # no manifest yet, or a damaged one: extract again
    if not writable:
        raise _read_only(os.path.dirname(target), name)
    tmp = tempfile.mkdtemp(dir=os.path.dirname(target), prefix=PARTIAL)
    try:
        _extract(archive, tmp)
        record = {'archive': sha1, 'files': _file_hashes(tmp)}
        if os.path.exists(manifest):
            os.remove(manifest)
        shutil.rmtree(target, ignore_errors=True)
        os.replace(tmp, target)
        with tempfile.NamedTemporaryFile('w', dir=os.path.dirname(target), prefix=PARTIAL,
                                         delete=False) as f:
            json.dump(record, f)
        os.replace(f.name, manifest)
    except DataError:
        raise
    except Exception as e:  # a local failure or a malformed archive
        raise DataError(f'cannot extract {archive} (it matches its SHA-1 and is '
                        f'kept): {type(e).__name__}: {e}') from e
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def download_extract(name, folder=None):
    """Download and extract a zip/tar archive; return its (sub)directory."""
    # The extracted files are checked against the SHA-1s recorded when they were
    # extracted and extracted again from the verified archive if they changed.
    urls, sha1 = hub_entry(name)
    base = _file_name(name, urls[0])
    match = ARCHIVE.fullmatch(base)
    if match is None:
        raise DataError(f'dataset {name!r}: {base} is not a .zip, .tar, .tar.gz, '
                        '.tgz, .tar.bz2 or .tar.xz archive')
    dataset = os.path.join(data_dir(), name)
    target = os.path.join(dataset, match.group(1))
    with _locked(dataset) as writable:
        archive = _download_locked(name, urls, sha1, os.path.join(dataset, base), writable)
        _extract_locked(name, archive, sha1, target, writable)
    path = _inside(target, folder, archive) if folder else target
    if not os.path.isdir(path):
        raise DataError(f'{archive} has no folder {folder!r}')
    return path
