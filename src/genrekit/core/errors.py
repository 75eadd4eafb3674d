"""Exceptions raised by genrekit; every message names the file, row or field at fault."""

from __future__ import annotations


class GenrekitError(Exception):
    """Base class of every error genrekit raises on purpose (bad input, not a bug)."""


class TableError(GenrekitError, ValueError):
    """A feature table is missing, malformed or holds invalid values."""


class AudioError(GenrekitError, ValueError):
    """An audio file cannot be decoded or is unusable for feature extraction."""


class ModelError(GenrekitError, ValueError):
    """A saved model is missing, corrupt or incompatible with this genrekit."""


class DataError(GenrekitError):
    """Data genrekit downloads cannot be fetched or verified."""
