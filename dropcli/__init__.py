"""dropcli: experiments on dropout in fully-connected networks, in pure NumPy.

The package is a library with a thin command line on top (``dropcli.cli.app``).
Importing ``dropcli`` is cheap: NumPy and friends load only with the submodules
that need them.
"""

from dropcli.version import __version__
