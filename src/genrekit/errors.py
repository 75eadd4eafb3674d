"""Exceptions raised by genrekit; every message names the file, row or field at fault."""

from __future__ import annotations


class GenrekitError(Exception):
    """Base class of every error genrekit raises on purpose (bad input, not a bug).

    Attributes
    ----------
    exit_status : int
        The command line's exit status when this error ends a command (2: usage or invalid input;
        subclasses for a damaged catalogue or a lost cluster have their own).
    """

    exit_status: int = 2


class TableError(GenrekitError, ValueError):
    """A feature table is missing, malformed or holds invalid values."""


class AudioError(GenrekitError, ValueError):
    """An audio file cannot be decoded or is unusable for feature extraction."""


class ModelError(GenrekitError, ValueError):
    """A saved model is missing, corrupt or incompatible with this genrekit."""


class DataError(GenrekitError):
    """Data genrekit downloads cannot be fetched or verified."""
