"""Shared fixtures: an isolated data cache and a loopback HTTP server."""

import contextlib
import pathlib
import random
import sys

import mxnet as mx
import numpy as onp
import pytest

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parent.parent / 'tools'))
import offline_hub  # noqa: E402


def seed_all(seed):
    """Seed Python's, NumPy's and MXNet's random number generators."""
    random.seed(seed)
    onp.random.seed(seed)
    mx.random.seed(seed)


@pytest.fixture(autouse=True)
def isolated_data(monkeypatch, tmp_path):
    """Give every test its own empty cache and no D2L_DATA_HUB override."""
    monkeypatch.delenv('D2L_DATA_HUB', raising=False)
    monkeypatch.setenv('D2L_DATA_DIR', str(tmp_path / 'cache'))


@pytest.fixture
def loopback_server():
    """Return a function that serves a directory on 127.0.0.1 and gives its URL."""
    with contextlib.ExitStack() as stack:
        yield lambda directory: stack.enter_context(offline_hub.serve(directory))


@pytest.fixture(scope='session')
def wiki_fixture():
    """Path of the real-text fixture (the WikiText-2 validation split)."""
    return offline_hub.FIXTURE
