"""The project's one error family.

Every error a user can cause (a missing file, bad data, a model for another
GPU) is a `PolypRtError`; the CLI prints its message as one line and exits 2.
Anything else is a bug and exits 1.
"""


class PolypRtError(Exception):
    """A problem with the user's input or environment, with what to do about it."""

    exit_code = 2


class InputFileError(PolypRtError):
    """A file or folder the user named is missing, empty or unreadable."""


class DataError(PolypRtError):
    """A data set is malformed: missing masks, size mismatches, an empty folder."""


class ModelError(PolypRtError):
    """A model, checkpoint or engine cannot be loaded or does not match its contract."""


class BackendUnavailable(PolypRtError):
    """An inference backend or device is not available on this machine."""


class SourceError(PolypRtError):
    """A video source cannot be opened or stopped delivering frames."""


class RecorderError(PolypRtError):
    """The annotated recording cannot be written."""


class OutputError(PolypRtError):
    """An output path would overwrite an input or another output, or cannot be written."""
