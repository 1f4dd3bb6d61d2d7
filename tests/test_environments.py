"""requirements.txt, build.yml and environment.yml pin the same versions."""

import pathlib
import re

import yaml

ROOT = pathlib.Path(__file__).resolve().parent.parent
PIN = re.compile(r'^([A-Za-z0-9_.\-]+)==(\S+)$')


def pins(lines):
    """Map package name -> pinned version for every 'name==version' line."""
    found = {}
    for line in lines:
        match = PIN.match(line.split('#')[0].strip())
        if match:
            found[match.group(1).lower()] = match.group(2)
    return found


def conda_pip_pins(name):
    """The pip pins of a conda environment file."""
    env = yaml.safe_load((ROOT / name).read_text())
    assert 'python=3.11' in env['dependencies'], name
    pip = next(d['pip'] for d in env['dependencies'] if isinstance(d, dict))
    return pins(pip)


def test_requirements_pin_the_known_good_stack():
    req = pins((ROOT / 'requirements.txt').read_text().splitlines())
    assert req['mxnet'] == '1.9.1'
    assert req['numpy'] == '1.23.5'  # mxnet 1.9.1 breaks with numpy >= 1.24
    assert tuple(map(int, req['matplotlib'].split('.')[:2])) < (3, 10)
    assert req['d2lbook'] == '1.0.3' and req['pybtex'] == '0.24.0'


def test_build_environment_matches_requirements():
    req = pins((ROOT / 'requirements.txt').read_text().splitlines())
    assert conda_pip_pins('build.yml') == req


def test_reader_environment_is_the_gpu_build_with_the_same_pins():
    req = pins((ROOT / 'requirements.txt').read_text().splitlines())
    gpu = pins((ROOT / 'requirements-gpu.txt').read_text().splitlines())
    env = conda_pip_pins('environment.yml')
    assert env.pop('mxnet-cu112') == req['mxnet']
    assert {name: env.pop(name) for name in gpu if name in env} == gpu
    for name, version in env.items():
        assert req[name] == version, name


def test_gpu_requirements_pin_cuda_11_libraries_with_mxnet_sonames():
    gpu = pins((ROOT / 'requirements-gpu.txt').read_text().splitlines())
    # one wheel per library that libmxnet.so of mxnet-cu112 links, plus cuSPARSE
    assert set(gpu) == {f'nvidia-{lib}-cu11' for lib in (
        'cuda-runtime', 'cublas', 'cudnn', 'nccl', 'curand', 'cufft',
        'cusolver', 'cusparse', 'cuda-nvrtc', 'nvtx')}
    assert gpu['nvidia-cudnn-cu11'].startswith('8.')  # cuDNN 9: libcudnn.so.9
    assert gpu['nvidia-cuda-runtime-cu11'].startswith('11.')
