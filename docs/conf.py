"""Sphinx configuration of the docs (``make docs``; built with -W in the test suite): the guides and
the results book (Markdown, through myst-parser) and the API reference from the docstrings (api/)."""

project = "harness"
author = "the harness developers"
extensions = ["myst_parser", "sphinx.ext.autodoc", "sphinx.ext.napoleon"]
source_suffix = {".rst": "restructuredtext", ".md": "markdown"}
myst_heading_anchors = 3  # the pages link to each other's sections by GitHub-style anchors
autodoc_member_order = "bysource"
autodoc_typehints = "none"  # the signatures and the docstrings say it; torch types would not resolve
autodoc_default_options = {"members": True, "undoc-members": False, "show-inheritance": False}
napoleon_google_docstring = False
napoleon_numpy_docstring = False
html_theme = "alabaster"
exclude_patterns = ["_build", "api/_build"]
nitpicky = False
suppress_warnings = ["ref.python"]
