"""The package version (a leaf: imports nothing, so any module may read it)."""

__version__ = "0.2.0"
