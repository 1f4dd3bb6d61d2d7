"""The library is the notebooks' code, and importing it behaves."""

import pathlib
import shutil
import subprocess
import sys

ROOT = pathlib.Path(__file__).resolve().parent.parent
D2LBOOK = pathlib.Path(sys.executable).parent / 'd2lbook'


def test_build_lib_leaves_the_library_unchanged(tmp_path):
    for name in ('config.ini', 'index.md'):
        shutil.copy(ROOT / name, tmp_path)
    shutil.copytree(ROOT / 'chapter_bert', tmp_path / 'chapter_bert')
    shutil.copytree(ROOT / 'd2l', tmp_path / 'd2l',
                    ignore=shutil.ignore_patterns('__pycache__'))
    subprocess.run([str(D2LBOOK), 'build', 'lib'], cwd=tmp_path, check=True,
                   capture_output=True)
    for name in ('mxnet.py', '__init__.py'):
        regenerated = (tmp_path / 'd2l' / name).read_text()
        assert regenerated == (ROOT / 'd2l' / name).read_text(), (
            f'd2l/{name} differs from what `d2lbook build lib` makes from '
            'the notebooks: run it and commit the result')


def test_importing_d2l_alone_does_not_import_mxnet(tmp_path):
    code = 'import sys, d2l; assert "mxnet" not in sys.modules, "mxnet imported"'
    subprocess.run([sys.executable, '-c', code], cwd=tmp_path, check=True)


def test_d2l_mxnet_imports_from_anywhere(tmp_path):
    code = ('from d2l import mxnet as d2l; '
            'assert d2l.Vocab and d2l.download_extract and d2l.try_all_gpus')
    subprocess.run([sys.executable, '-c', code], cwd=tmp_path, check=True)
