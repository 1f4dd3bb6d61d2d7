"""Convert the chapter's markdown notebooks to unexecuted .ipynb files for nbval.

Usage: python tools/md2ipynb.py OUT_DIR  (writes OUT_DIR/chapter_bert/*.ipynb)
"""

import pathlib
import sys

import nbformat
from d2lbook import notebook

ROOT = pathlib.Path(__file__).resolve().parent.parent


def main(out_dir):
    out_dir = pathlib.Path(out_dir)
    for md in sorted((ROOT / 'chapter_bert').glob('*.md')):
        nb = notebook.read_markdown(md.read_text(encoding='utf-8'))
        if not any(cell.cell_type == 'code' for cell in nb.cells):
            continue
        nb.metadata['kernelspec'] = {'name': 'python3', 'language': 'python',
                                     'display_name': 'Python 3'}
        target = out_dir / 'chapter_bert' / (md.stem + '.ipynb')
        target.parent.mkdir(parents=True, exist_ok=True)
        nbformat.write(nb, str(target))
        print(target)


if __name__ == '__main__':
    main(sys.argv[1])
