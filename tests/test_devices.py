"""Devices: which GPUs try_gpu and try_all_gpus return, on any machine.

Machines with GPUs of every generation are simulated by replacing the two
functions that ask the driver, npx.num_gpus and d2l.gpu_info; gpu_info itself
is run against a fake libcuda.so.1 compiled here.
"""

import os
import pathlib
import shutil
import subprocess
import sys
import textwrap
import warnings

import mxnet as mx
import pytest
from mxnet import npx

from d2l import mxnet as d2l


def simulate_gpus(monkeypatch, gpus):
    """Make the library see GPUs given as (name, (major, minor)) pairs."""
    monkeypatch.setattr(npx, 'num_gpus', lambda: len(gpus))
    monkeypatch.setattr(d2l, 'gpu_info', lambda i: gpus[i])


def test_devices_of_this_machine_are_usable_gpus_or_the_cpu():
    devices = d2l.try_all_gpus()
    if npx.num_gpus() == 0:
        assert devices == [npx.cpu()] and d2l.try_gpu() == npx.cpu()
    else:  # a GPU machine: what the library keeps, MXNet has code for
        for device in devices:
            if device != npx.cpu():
                assert 5 <= d2l.gpu_info(device.device_id)[1][0] <= 8


def test_no_gpu_means_the_cpu_without_asking_the_driver(monkeypatch):
    def no_driver(i):
        raise AssertionError('the driver must not be asked')
    monkeypatch.setattr(npx, 'num_gpus', lambda: 0)
    monkeypatch.setattr(d2l, 'gpu_info', no_driver)
    with warnings.catch_warnings():
        warnings.simplefilter('error')
        assert d2l.usable_gpus() == []
        assert d2l.try_gpu() == npx.cpu() and d2l.try_all_gpus() == [npx.cpu()]


@pytest.mark.parametrize('capability, usable', [
    ((3, 7), False),  # Kepler (Tesla K80): the wheels start at 5.0
    ((5, 0), True), ((6, 1), True), ((7, 0), True), ((7, 5), True),
    ((8, 0), True), ((8, 6), True),
    ((8, 9), True),   # Ada runs the 8.6 code
    ((9, 0), False),  # Hopper
    ((10, 0), False), ((12, 0), False)])  # Blackwell
def test_gpu_is_usable_when_the_wheels_have_code_for_it(
        monkeypatch, capability, usable):
    simulate_gpus(monkeypatch, [('Some GPU', capability)])
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter('always')
        devices = d2l.try_all_gpus()
    assert devices == ([npx.gpu(0)] if usable else [npx.cpu()])
    assert len(caught) == (0 if usable else 1)


def test_hopper_gets_one_clear_message_and_the_cpu(monkeypatch):
    simulate_gpus(monkeypatch, [('NVIDIA H100 80GB HBM3', (9, 0))] * 2)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter('default')  # Python's default: once per text
        for _ in range(3):
            assert d2l.try_all_gpus() == [npx.cpu()]
            assert d2l.try_gpu() == npx.cpu() and d2l.try_gpu(1) == npx.cpu()
    assert len(caught) == 1
    message = str(caught[0].message)
    for part in ('gpu(0) NVIDIA H100 80GB HBM3, compute capability 9.0',
                 'gpu(1) NVIDIA H100 80GB HBM3', 'MXNet 1.9.1',
                 '5.0 to 8.6', 'on the CPU'):
        assert part in message


def test_a_mixed_machine_keeps_the_driver_numbering(monkeypatch):
    simulate_gpus(monkeypatch, [('NVIDIA H100 PCIe', (9, 0)),
                                ('NVIDIA A100-SXM4-40GB', (8, 0)),
                                ('Tesla K80', (3, 7)),
                                ('NVIDIA GeForce RTX 4090', (8, 9))])
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter('always')
        assert d2l.try_all_gpus() == [npx.gpu(1), npx.gpu(3)]
    (warning,) = caught
    with warnings.catch_warnings():
        warnings.simplefilter('ignore')
        assert d2l.try_gpu(0) == npx.cpu() and d2l.try_gpu(1) == npx.gpu(1)
        assert d2l.try_gpu(3) == npx.gpu(3) and d2l.try_gpu(4) == npx.cpu()
    assert 'gpu(0) NVIDIA H100 PCIe, compute capability 9.0' in str(
        warning.message)
    assert 'gpu(2) Tesla K80, compute capability 3.7' in str(warning.message)
    assert 'gpu(1)' not in str(warning.message)


FAKE_DRIVER = r'''
#include <stdio.h>
/* Two GPUs; device handles differ from ordinals to catch a mix-up. */
static const char *names[] = {"Fake A100", "Fake H100"};
static const int capability[][2] = {{8, 0}, {9, 0}};
int cuInit(unsigned int flags) { return flags == 0 ? 0 : 1; }
int cuDeviceGet(int *device, int ordinal) {
    if (ordinal < 0 || ordinal > 1) return 101;  /* CUDA_ERROR_INVALID_DEVICE */
    *device = 40 + ordinal;
    return 0;
}
int cuDeviceGetName(char *name, int len, int device) {
    snprintf(name, len, "%s", names[device - 40]);
    return 0;
}
int cuDeviceGetAttribute(int *value, int attribute, int device) {
    if (attribute != 75 && attribute != 76) return 1;
    *value = capability[device - 40][attribute - 75];
    return 0;
}
'''


@pytest.mark.skipif(shutil.which('cc') is None, reason='needs a C compiler')
@pytest.mark.skipif(mx.runtime.Features().is_enabled('CUDA'),
                    reason="the fake driver would hide this GPU build's own")
def test_gpu_info_asks_the_driver(tmp_path):
    source = tmp_path / 'fake_cuda.c'
    source.write_text(FAKE_DRIVER)
    subprocess.run(['cc', '-shared', '-fPIC', '-o', tmp_path / 'libcuda.so.1',
                    source], check=True)
    script = textwrap.dedent('''
        from d2l import mxnet as d2l
        print(d2l.gpu_info(0), d2l.gpu_info(1))
        try:
            d2l.gpu_info(2)
        except RuntimeError as error:
            print(error)
    ''')
    result = subprocess.run([sys.executable, '-c', script], check=True,
                            capture_output=True, text=True,
                            env=dict(os.environ, LD_LIBRARY_PATH=str(tmp_path)))
    assert result.stdout.splitlines() == [
        "('Fake A100', (8, 0)) ('Fake H100', (9, 0))",
        ('CUDA driver: cuDeviceGet failed with error 101 while asking about '
         'gpu(2)')]


def test_gpu_check_checks_exactly_the_usable_gpus():
    root = pathlib.Path(__file__).resolve().parent.parent
    result = subprocess.run([sys.executable, 'scripts/gpu_check.py'],
                            cwd=root, capture_output=True, text=True,
                            check=False)
    with warnings.catch_warnings():
        warnings.simplefilter('ignore')
        gpus = d2l.usable_gpus()
    if not gpus:  # says why and fails, so that CI notices
        assert result.returncode == 1 and result.stdout == ''
        assert result.stderr.startswith('gpu_check: ')
        if not mx.runtime.Features().is_enabled('CUDA'):
            assert 'CPU build' in result.stderr
            assert 'MXNET_WHEEL=mxnet-cu112 bash tools/setup.sh' in result.stderr
    else:
        assert result.returncode == 0, result.stdout + result.stderr
        lines = result.stdout.splitlines()
        assert [line.split()[0] for line in lines] == [str(g) for g in gpus]
        assert all(line.endswith('sentence pairs/s') for line in lines)
