"""Sphinx configuration of the hyperspy-eelspecnet documentation.

Build (from the repository root)::

    python -m sphinx -W -b html docs docs/_build/html
    python -m sphinx -W -b doctest docs docs/_build/doctest

Every ``>>>`` example of every page (and of the docstrings) runs in the doctest build.
"""

import os
from pathlib import Path

# Before matplotlib is imported by anything; TensorFlow's start-up logging is silenced by the
# package itself (hyperspy_eelspecnet/__init__.py), as users get it.
os.environ.setdefault("MPLBACKEND", "Agg")

import hyperspy_eelspecnet  # noqa: E402

REPOSITORY = Path(__file__).resolve().parent.parent

project = "hyperspy-eelspecnet"
author = "hyperspy-eelspecnet developers"
copyright = "hyperspy-eelspecnet developers, GPL-3.0-or-later"
version = release = hyperspy_eelspecnet.__version__

extensions = [
    "sphinx.ext.autodoc",
    "sphinx.ext.autosummary",
    "sphinx.ext.doctest",
    "sphinx.ext.mathjax",
    "numpydoc",
    "myst_parser",
]

source_suffix = {".rst": "restructuredtext", ".md": "markdown"}
root_doc = "index"
exclude_patterns = ["_static/**", "_build", "**/.gitkeep"]
templates_path = ["_templates"]

# API reference: one generated page per module (docs/api/, not tracked), members from __all__.
autosummary_generate = True
autosummary_ignore_module_all = False  # list what __all__ exports, re-exports included
autodoc_default_options = {"members": True, "show-inheritance": True}
autodoc_typehints = "none"  # numpydoc's Parameters sections say the types
numpydoc_show_class_members = False
numpydoc_class_members_toctree = False

# The model card is rewritten by `eelspecnet evaluate --card`; its heading levels are not ours.
myst_heading_anchors = 3
suppress_warnings = ["myst.header"]

html_theme = "alabaster"
html_static_path = ["_static"]
html_title = f"hyperspy-eelspecnet {release}"
html_theme_options = {"description": "EELSpecNet restoration of near-zero-loss EELS, a HyperSpy extension"}

# Examples run from the repository root (they read tests/data/) without progress bars.
doctest_global_setup = f"""
import os
os.chdir({str(REPOSITORY)!r})
import hyperspy.api as hs
hs.preferences.General.show_progressbar = False
"""
