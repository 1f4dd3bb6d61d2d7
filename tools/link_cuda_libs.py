"""Make the CUDA libraries of NVIDIA's wheels visible to mxnet-cu112.

libmxnet.so looks for its libraries in its own directory (its RPATH is
$ORIGIN), so a symbolic link there to every library of the nvidia-* wheels of
requirements-gpu.txt serves every process that imports mxnet: scripts, Jupyter
kernels and python alike, with no LD_LIBRARY_PATH. Then the script asks ldd
whether every library of libmxnet.so resolves; only the driver's libcuda.so.1
may be missing (on a machine without the NVIDIA driver). Run it with the
environment's python after installing or upgrading the wheels:

    python tools/link_cuda_libs.py
"""

import importlib.util
import os
import pathlib
import subprocess
import sys

DRIVER = 'libcuda.so.1'  # comes with the NVIDIA driver, never from pip


def package_dirs(name):
    """The directories of an installed package, found without importing it."""
    spec = importlib.util.find_spec(name)
    if spec is None or not spec.submodule_search_locations:
        sys.exit(f'link_cuda_libs: package {name!r} is not installed for '
                 f'{sys.executable}; install mxnet-cu112 and '
                 f'requirements-gpu.txt first (tools/setup.sh does both).')
    return [pathlib.Path(p) for p in spec.submodule_search_locations]


def link_libraries(mxnet_dir, nvidia_dirs):
    """Link every nvidia/*/lib/*.so* into mxnet_dir; return the link names."""
    for old in mxnet_dir.iterdir():  # links of an earlier run may be stale
        if old.is_symlink() and '/nvidia/' in str(old.readlink()):
            old.unlink()
    names = []
    for lib in sorted(p for d in nvidia_dirs for p in d.glob('*/lib/*.so*')):
        link = mxnet_dir / lib.name
        if link.exists():
            sys.exit(f'link_cuda_libs: {link} exists and is not a link of '
                     f'ours; refusing to replace it with a link to {lib}.')
        link.symlink_to(os.path.relpath(lib, mxnet_dir))
        names.append(lib.name)
    return names


def unresolved(library):
    """The libraries that ldd reports as 'not found' for library."""
    out = subprocess.run(['ldd', str(library)], capture_output=True,
                         text=True, check=True).stdout
    return sorted(line.split()[0] for line in out.splitlines()
                  if 'not found' in line)


def main():
    mxnet_dir = package_dirs('mxnet')[0]
    libmxnet = mxnet_dir / 'libmxnet.so'
    if not libmxnet.exists():
        sys.exit(f'link_cuda_libs: {libmxnet} does not exist.')
    names = link_libraries(mxnet_dir, package_dirs('nvidia'))
    missing = [name for name in unresolved(libmxnet) if name != DRIVER]
    if missing:
        sys.exit(f'link_cuda_libs: {libmxnet} still misses {missing} after '
                 f'linking {len(names)} libraries; are the wheels of '
                 f'requirements-gpu.txt installed?')
    print(f'Linked {len(names)} CUDA libraries into {mxnet_dir}.')


if __name__ == '__main__':
    main()
