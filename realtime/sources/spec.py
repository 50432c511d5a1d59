"""The --source grammar, written once: which kind of source a --source string names.

In order: a registered prefix (`synthetic:`, a stream scheme such as `rtsp://`, `/dev/video`),
a camera index (digits), then a path: a folder of images, else a video file. What the forms
are called for people is `SOURCE_FORMS` (realtime/config.py, beside the flag).
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from polyp_rt.core.errors import InputFileError
from polyp_rt.core.redact import redact
from polyp_rt.realtime.config import SOURCE_FORMS, CaptureConfig
from polyp_rt.realtime.sources.base import Source
from polyp_rt.realtime.sources.camera import CameraSource
from polyp_rt.realtime.sources.image_folder import ImageFolderSource
from polyp_rt.realtime.sources.stream import STREAM_SCHEMES, StreamSource
from polyp_rt.realtime.sources.synthetic import SyntheticSource
from polyp_rt.realtime.sources.video_file import VideoFileSource

SourceFactory = Callable[[str, CaptureConfig], Source]
# (prefix of the --source string, the Source class for it); checked in order, before paths
KINDS: list[tuple[str, SourceFactory]] = [
    ("synthetic:", SyntheticSource),
    *((scheme, StreamSource) for scheme in STREAM_SCHEMES),
    ("/dev/video", CameraSource),
]


def named_kind(spec: str) -> SourceFactory | None:
    """The source class a --source string names by its form (a prefix, a camera index); None
    where it names a path (a video file or an image folder)."""
    for prefix, kind in KINDS:
        if spec.startswith(prefix):
            return kind
    return CameraSource if spec.isdigit() else None


def source_path(spec: str) -> Path | None:
    """The file or folder a --source string names; None for a camera, a stream or a synthetic scene."""
    return None if named_kind(spec) else Path(spec)


def open_source(spec: str, options: CaptureConfig) -> Source:
    """The source for a --source string (not yet opened: call `open()`)."""
    kind = named_kind(spec)
    if kind is not None:
        return kind(spec, options)
    path = Path(spec)
    if path.is_dir():
        return ImageFolderSource(path, options)
    if not path.exists():
        # redacted: a URL with a scheme we do not know (a typo) lands here, credentials and all
        raise InputFileError(f"{redact(spec)}: no such file or folder; --source takes {SOURCE_FORMS}")
    return VideoFileSource(path, options)
