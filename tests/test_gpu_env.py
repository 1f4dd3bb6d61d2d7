"""Opt-in: the GPU environment of tools/setup.sh, built in a scratch copy.

Runs only with D2L_TEST_GPU_ENV=1: it downloads about 2.4 GB of wheels
(mxnet-cu112 and NVIDIA's CUDA 11 libraries) and takes several minutes. No
GPU is needed: it checks that every library of libmxnet.so resolves from the
venv except the driver's libcuda.so.1, the only thing a GPU machine must add.
"""

import os
import pathlib
import subprocess
import textwrap

import pytest

ROOT = pathlib.Path(__file__).resolve().parent.parent
DRIVER = 'libcuda.so.1'
CUDA_LIBRARIES = {'libcudart.so.11.0', 'libcublas.so.11', 'libcublasLt.so.11',
                  'libcudnn.so.8', 'libnccl.so.2', 'libcufft.so.10',
                  'libcurand.so.10', 'libcusolver.so.11', 'libnvrtc.so.11.2',
                  'libnvToolsExt.so.1'}

pytestmark = pytest.mark.skipif(
    os.environ.get('D2L_TEST_GPU_ENV') != '1',
    reason='opt-in (downloads ~2.4 GB): set D2L_TEST_GPU_ENV=1')


def run(command, cwd, **env):
    """Run command in cwd without LD_LIBRARY_PATH; return its stdout."""
    clean = {k: v for k, v in os.environ.items() if k != 'LD_LIBRARY_PATH'}
    result = subprocess.run(command, cwd=cwd, env=dict(clean, **env),
                            capture_output=True, text=True, check=False)
    assert result.returncode == 0, (command, result.stdout, result.stderr)
    return result.stdout


@pytest.fixture(scope='module')
def gpu_copy(tmp_path_factory):
    """A copy of the repository whose .venv was set up for mxnet-cu112."""
    copy = tmp_path_factory.mktemp('gpu_env')
    files = run(['git', 'ls-files', '--cached', '--others',
                 '--exclude-standard', '-z'], ROOT).split('\0')
    run(['cp', '--parents', '-t', str(copy)] + [f for f in files if f], ROOT)
    run(['bash', 'tools/setup.sh'], copy, MXNET_WHEEL='mxnet-cu112')
    return copy


def site_packages(copy):
    """The site-packages directory of the copy's .venv."""
    (path,) = (copy / '.venv' / 'lib').glob('python3*/site-packages')
    return path


def test_every_library_of_libmxnet_resolves_but_the_driver(gpu_copy):
    mxnet_dir = site_packages(gpu_copy) / 'mxnet'
    resolved, missing = {}, []
    for line in run(['ldd', str(mxnet_dir / 'libmxnet.so')], gpu_copy).splitlines():
        parts = line.split()
        if 'not found' in line:
            missing.append(parts[0])
        elif '=>' in parts:
            resolved[parts[0]] = pathlib.Path(parts[2])
    assert missing == [DRIVER]
    assert CUDA_LIBRARIES <= set(resolved)
    for name in CUDA_LIBRARIES:  # found through libmxnet.so's RPATH $ORIGIN
        assert resolved[name].parent == mxnet_dir, (name, resolved[name])
        assert '/nvidia/' in str(resolved[name].resolve())


def test_cudnn_loads_its_sub_libraries(gpu_copy):
    # cuDNN 8 dlopens libcudnn_{ops,cnn,adv}_{infer,train}.so.8 itself; its
    # version checks load each one and abort the process if one is missing.
    script = textwrap.dedent('''
        import ctypes, importlib.util, pathlib
        mxnet_dir = pathlib.Path(importlib.util.find_spec('mxnet').origin).parent
        cudnn = ctypes.CDLL(str(mxnet_dir / 'libcudnn.so.8'))
        for part in ('Ops', 'Cnn', 'Adv'):
            for stage in ('Infer', 'Train'):
                assert getattr(cudnn, f'cudnn{part}{stage}VersionCheck')() == 0
        maps = open('/proc/self/maps').read()
        print(len({line.split()[-1] for line in maps.splitlines()
                   if 'libcudnn_' in line}))
    ''')
    python = gpu_copy / '.venv' / 'bin' / 'python'
    assert run([str(python), '-c', script], '/').strip() == '6'


def test_importing_mxnet_misses_only_the_driver(gpu_copy):
    python = gpu_copy / '.venv' / 'bin' / 'python'
    result = subprocess.run([str(python), '-c', 'import mxnet'], cwd='/',
                            capture_output=True, text=True, check=False)
    if result.returncode == 0:  # a machine with the NVIDIA driver
        return
    last = result.stderr.strip().splitlines()[-1]
    assert last.startswith('OSError') and DRIVER in last, result.stderr


def test_gpu_check_names_the_missing_driver(gpu_copy):
    if (pathlib.Path('/proc/driver/nvidia')).exists():
        pytest.skip('this machine has the NVIDIA driver')
    result = subprocess.run(['bash', 'scripts/gpu_check.sh'], cwd=gpu_copy,
                            capture_output=True, text=True, check=False)
    assert result.returncode == 1
    assert 'MXNet could not load' in result.stderr
    assert DRIVER in result.stderr


def test_setting_up_the_cpu_build_again_removes_the_links(gpu_copy):
    # last in this file: it turns the copy's .venv back into the CPU build
    run(['bash', 'tools/setup.sh'], gpu_copy)
    mxnet_dir = site_packages(gpu_copy) / 'mxnet'
    assert not [p for p in mxnet_dir.iterdir() if p.is_symlink()]
    python = gpu_copy / '.venv' / 'bin' / 'python'
    count = 'from mxnet import npx; print(npx.num_gpus())'
    assert run([str(python), '-c', count], '/').strip() == '0'
