"""Sphinx configuration of the genrekit documentation.

Build: ``sphinx-build -W -b html docs docs/_build/html`` (warnings are errors, nothing is downloaded).
"""

from __future__ import annotations

import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE / "_ext"))
sys.path.insert(0, str(HERE.parent / "src"))

import genrekit  # noqa: E402

project = "genrekit"
author = "genrekit contributors"
copyright = "genrekit contributors"
release = genrekit.__version__
version = release

extensions = [
    "myst_parser",
    "sphinx.ext.autodoc",
    "sphinx.ext.autosummary",
    "sphinx.ext.napoleon",
    "sphinxarg.ext",
    "genrekit_docs",
]
source_suffix = {".md": "markdown", ".rst": "restructuredtext"}
exclude_patterns = ["_build", "_ext", "_templates", "Thumbs.db", ".DS_Store"]
templates_path = ["_templates"]
root_doc = "index"
# literal blocks (the command line's help texts) are plain text, not Python
highlight_language = "text"
# options such as --data stay two hyphens (no en dashes, no curly quotes in commands)
smartquotes = False

myst_enable_extensions = ["colon_fence", "deflist"]
myst_heading_anchors = 3

# The Python API: NumPy-style docstrings; autosummary follows ``genrekit.__all__``.
autosummary_generate = True
autosummary_ignore_module_all = False
autodoc_default_options = {"members": True, "show-inheritance": True}
autodoc_typehints = "description"
autodoc_member_order = "bysource"
napoleon_google_docstring = False
napoleon_numpy_docstring = True
napoleon_use_rtype = False
napoleon_use_ivar = True  # "Attributes" sections as fields, so attributes are not described twice
# docstrings cross-reference many names (np.ndarray, pd.DataFrame, ...) that have no page here
nitpicky = False
# ambiguous short names in docstrings' type fields ("path", "GenreModel") resolve to the first target
suppress_warnings = ["myst.xref_missing", "ref.python"]

# furo: a clean, readable single-column theme with a light/dark switch, a sidebar that shows the
# whole toctree, and no JavaScript framework or web fonts fetched from a CDN (the site works offline).
html_theme = "furo"
html_title = f"genrekit {release}"
html_static_path = ["_static"]
html_css_files = ["genrekit.css"]
html_theme_options = {"navigation_with_keys": True}
html_show_sourcelink = False


def _skip_sklearn_request_methods(app, what, name, obj, skip, options):
    """Leave out scikit-learn's generated ``set_*_request`` methods (metadata routing, not genrekit's)."""
    return True if name.startswith("set_") and name.endswith("_request") else None


def setup(app):
    """Connect this configuration's handlers."""
    app.connect("autodoc-skip-member", _skip_sklearn_request_methods)
