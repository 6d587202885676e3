"""Sphinx configuration: API pages from the docstrings (autodoc + napoleon for the Google-style "Args:")."""
project = "snn_ssm"
author = "snn_ssm developers"
extensions = ["sphinx.ext.autodoc", "sphinx.ext.napoleon", "sphinx.ext.mathjax", "sphinx.ext.viewcode"]
autodoc_default_options = {"members": True, "undoc-members": False, "show-inheritance": True}
autodoc_member_order = "bysource"
autodoc_typehints = "description"
# the framework adapters need their frameworks; everything else imports torch only
autodoc_mock_imports = []
napoleon_google_docstring = True
napoleon_numpy_docstring = False
exclude_patterns = ["_build"]
html_theme = "alabaster"
nitpicky = False
suppress_warnings = ["config.cache"]
