"""Write the book's API page (reStructuredText) from the generated part of d2l/mxnet.py.

Usage: python tools/api_page.py [d2l/mxnet.py]   (prints the page)
"""

import ast
import pathlib
import re
import sys

BANNER = '#################   WARNING   ################'
DEFINED_IN = re.compile(r'Defined in :numref:`([^`]+)`')
HEADER = """\
.. _sec_api:

The ``d2l`` API
===============

Every function and class that a section saves with ``#@save`` is written into
``d2l/mxnet.py``, and this page is generated from that file whenever the book
is built. Use them after ``from d2l import mxnet as d2l``; each entry links to
the section that explains it.

"""


def generated_part(library):
    """Return the source below the WARNING banner of a d2lbook library file."""
    text = pathlib.Path(library).read_text(encoding='utf-8')
    if BANNER not in text:
        raise ValueError(f'{library}: no line {BANNER!r}, the banner above '
                         'the part that d2lbook build lib generates')
    return text.split(BANNER, 1)[1]


def rst_escape(text):
    """Escape the characters that reStructuredText would read as markup."""
    return re.sub(r'([\\`*_|])', r'\\\1', text)


def summary(node):
    """Return the first line of a node's docstring unless it only says where it is defined."""
    doc = ast.get_docstring(node) or ''
    first = doc.strip().splitlines()[0].strip() if doc.strip() else ''
    return '' if DEFINED_IN.match(first) else first


def defined_in(*nodes):
    """Return the section label in the first 'Defined in' docstring of the nodes."""
    for node in nodes:
        found = DEFINED_IN.search(ast.get_docstring(node) or '')
        if found:
            return found.group(1)
    return None


def signature(function, drop_self=False):
    """Return a function's argument list as written in the source."""
    args = function.args
    if drop_self and args.posonlyargs:
        args.posonlyargs = args.posonlyargs[1:]
    elif drop_self and args.args:
        args.args = args.args[1:]
    return ast.unparse(args)


def entry(directive, name, args, text, label, indent=''):
    """Return one API entry as a Sphinx Python-domain directive."""
    lines = [f'{indent}.. py:{directive}:: {name}({args})', '']
    body = rst_escape(text)
    if label:
        body += (' ' if body else '') + f'Defined in :numref:`{{number}} {{name}} <{label}>`.'
    if body:
        lines += [f'{indent}   {body}', '']
    return lines


def render(library):
    """Return the API page for the functions and classes in a library file."""
    tree = ast.parse(generated_part(library), filename=str(library))
    lines = HEADER.splitlines()
    public = [node for node in tree.body
              if isinstance(node, (ast.FunctionDef, ast.ClassDef))
              and not node.name.startswith('_')]
    for node in public:
        if isinstance(node, ast.FunctionDef):
            lines += entry('function', f'd2l.{node.name}', signature(node),
                           summary(node), defined_in(node))
        else:
            methods = [m for m in node.body if isinstance(m, ast.FunctionDef)]
            init = [m for m in methods if m.name == '__init__']
            lines += entry('class', f'd2l.{node.name}',
                           signature(init[0], drop_self=True) if init else '',
                           summary(node), defined_in(node, *init))
            for method in methods:
                if not method.name.startswith('_'):
                    lines += entry('method', method.name,
                                   signature(method, drop_self=True),
                                   summary(method), None, indent='   ')
    return '\n'.join(lines) + '\n'


if __name__ == '__main__':
    print(render(sys.argv[1] if len(sys.argv) > 1 else 'd2l/mxnet.py'), end='')
