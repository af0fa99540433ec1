"""Exceptions and warnings raised by clustermap.

Every exception subclasses :class:`ValueError` (or :class:`FileNotFoundError`, or
:class:`ConnectionError` for downloads and Dask schedulers) as well as
:class:`ClustermapError`, so ``except ValueError`` keeps working in user code.

Messages say what was expected, what was given and how to fix it, naming the file, the row
or the column involved.
"""

from __future__ import annotations

__all__ = [
    "CRSError",
    "ClustermapError",
    "ClustermapWarning",
    "DataFileError",
    "FetchError",
    "SchedulerError",
    "SchemaError",
]


class ClustermapError(Exception):
    """Base class of every error raised on purpose by clustermap."""


class SchemaError(ClustermapError, ValueError):
    """A table lacks a column, or a column holds values of the wrong kind."""


class DataFileError(ClustermapError, ValueError):
    """A file cannot be read or is malformed (the message names the file and the line)."""


class CRSError(ClustermapError, ValueError):
    """A coordinate reference system is missing, unknown or does not match."""


class FetchError(ClustermapError, ConnectionError):
    """A publisher's file cannot be downloaded (offline, moved, or not the expected file)."""


class SchedulerError(ClustermapError, ConnectionError):
    """No Dask scheduler answers at the address given (``client=``, ``--scheduler``)."""


class ClustermapWarning(UserWarning):
    """Something was done that the user should know about (rows dropped, islands, ...)."""
