"""The library is the notebooks' code, and importing it behaves."""

import ast
import inspect
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


def test_every_library_function_and_class_says_what_it_does():
    # d2lbook keeps a one-line docstring and appends where it is defined; a
    # longer one would be pushed aside by its own "Defined in" line
    from d2l import mxnet as d2l
    defined_here = [obj for _, obj in inspect.getmembers(d2l)
                    if (inspect.isfunction(obj) or inspect.isclass(obj))
                    and obj.__module__ == d2l.__name__]
    assert len(defined_here) > 50
    for obj in defined_here:
        doc = inspect.getdoc(obj) or ''
        assert doc and not doc.startswith('Defined in'), (
            f'{obj.__name__} has no docstring of its own: {doc!r}')


def test_library_functions_are_short():
    """Every function of the generated library fits in 40 lines."""
    tree = ast.parse((ROOT / 'd2l' / 'mxnet.py').read_text())
    long = [(node.name, node.end_lineno - node.lineno + 1)
            for node in ast.walk(tree) if isinstance(node, ast.FunctionDef)
            and node.end_lineno - node.lineno + 1 > 40]
    assert long == []


def test_benchmarks_use_the_chapters_sizes():
    sys.path.insert(0, str(ROOT / 'benchmarks'))
    import common
    from d2l import mxnet as d2l
    assert common.CONFIG == {**d2l.SMALL_BERT, 'dropout': 0.2}
