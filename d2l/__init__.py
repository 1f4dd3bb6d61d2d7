"""Code saved from the chapter's notebooks.

Import the framework-specific module you need, e.g.
``from d2l import mxnet as d2l``. Importing ``d2l`` alone imports no framework.
"""

__version__ = "0.1.0"
