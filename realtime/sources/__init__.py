"""Video sources behind one interface, picked by `open_source(spec)` from the --source string.

One module per kind: a video file, a network stream, a camera or capture card, an image
folder, a synthetic scene; `spec` holds the --source grammar. Every source hands out RGB
frames (BGR from OpenCV is converted at the door), stamped with a monotonic capture time.
A live source (camera, stream, synthetic) is never blocked by the pipeline; a file source
is (nothing is lost).
"""

from polyp_rt.realtime.sources.base import MIN_SIDE, Source, SourceStalled, letterbox
from polyp_rt.realtime.sources.camera import CameraSource
from polyp_rt.realtime.sources.image_folder import ImageFolderSource
from polyp_rt.realtime.sources.spec import KINDS, SourceFactory, named_kind, open_source, source_path
from polyp_rt.realtime.sources.stream import STREAM_SCHEMES, StreamSource
from polyp_rt.realtime.sources.synthetic import SyntheticSource
from polyp_rt.realtime.sources.video_file import VideoFileSource

__all__ = [
    "KINDS",
    "MIN_SIDE",
    "STREAM_SCHEMES",
    "CameraSource",
    "ImageFolderSource",
    "Source",
    "SourceFactory",
    "SourceStalled",
    "StreamSource",
    "SyntheticSource",
    "VideoFileSource",
    "letterbox",
    "named_kind",
    "open_source",
    "source_path",
]
