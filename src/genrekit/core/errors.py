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


class SettingsError(GenrekitError, ValueError):
    """A setting is out of its range; :attr:`setting` names it (the command line shows its option).

    Parameters
    ----------
    setting : str
        The parameter's Python name (``window_seconds``; ``--window-seconds`` on the command line).
    problem : str
        What is wrong with its value.
    """

    def __init__(self, setting: str, problem: str) -> None:
        super().__init__(f"{setting} {problem}")
        self.setting = setting
        self.problem = problem


class DataError(GenrekitError):
    """Data genrekit downloads cannot be fetched or verified."""


class CatalogueError(GenrekitError):
    """A catalogue or checkpoint file cannot be opened, is of another version, or was made otherwise."""


class CatalogueStorageError(CatalogueError):
    """A catalogue or checkpoint is damaged (fails SQLite's checks) or cannot be written (disk full, I/O).

    Its own exit status (3), so that scripts can tell it from bad input: what was committed
    before is kept, and the fix is the file's or the disk's (restore a backup, free space).
    """

    exit_status = 3
