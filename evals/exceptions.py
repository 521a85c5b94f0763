"""Errors of the evaluations and benchmarks."""

from streamdesk.exceptions import StreamdeskError


class EvalError(StreamdeskError):
    """Base of the evaluations' errors."""


class DatasetError(EvalError):
    """A case file, a BEIR-layout folder or a source dataset cannot be read (missing file, malformed line)."""
