"""An upload, from the request to files in a temporary folder of the server's, and what each file is.

The body is streamed into `Uploads.root/<random>/` (never a name from the request: each part
is stored under its field's fixed name) and counted as it comes, so an upload over the limit is
refused at its Content-Length or at the byte that crosses it. The request's folder is removed
when the request is done, however it ends; the root is removed when the server stops.
What a file is comes from its first bytes, never from its name or its declared type.
"""

from __future__ import annotations

import secrets
import shutil
import tempfile
from collections.abc import AsyncIterator, Mapping
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

from polyp_rt.core.errors import InputFileError

FIELDS = ("file", "mask")  # the form's file fields: an image or a clip, and an optional mask
IMAGE_MAGIC = {
    b"\x89PNG\r\n\x1a\n": "PNG",
    b"\xff\xd8\xff": "JPEG",
    b"BM": "BMP",
    b"II*\x00": "TIFF",
    b"MM\x00*": "TIFF",
}
ARCHIVE_MAGIC = {
    b"PK\x03\x04": "a zip archive",
    b"\x1f\x8b": "a gzip archive",
    b"7z\xbc\xaf": "a 7-Zip archive",
}
KINDS = "an image (PNG, JPEG, BMP, TIFF) or a short clip (MP4, MOV, MKV, WebM, AVI)"


class UploadError(InputFileError):
    """An upload the server will not take; `status` is the HTTP answer."""

    def __init__(self, message: str, status: int = 400) -> None:
        super().__init__(message)
        self.status = status


def sniff(head: bytes) -> str:
    """'image', 'video' or UploadError saying what the bytes are instead."""
    if any(head.startswith(magic) for magic in IMAGE_MAGIC):
        return "image"
    if (
        head[4:8] == b"ftyp"
        or head.startswith(b"\x1a\x45\xdf\xa3")
        or (head[:4] == b"RIFF" and head[8:12] == b"AVI ")
    ):
        return "video"
    for magic, what in ARCHIVE_MAGIC.items():
        if head.startswith(magic):
            raise UploadError(f"that is {what}: upload one file, {KINDS}", 415)
    if not head:
        raise UploadError(f"the file is empty: upload {KINDS}", 400)
    raise UploadError(f"not an image or a video clip: upload {KINDS}", 415)


@dataclass
class Received:
    """The files of one upload, by field, in the request's own folder."""

    folder: Path
    files: dict[str, Path] = field(default_factory=dict)
    names: dict[str, str] = field(default_factory=dict)  # as the browser named them: shown, never opened


class Uploads:
    """The server's upload folder (made at start, removed at `close`) and its size limit."""

    def __init__(self, max_bytes: int) -> None:
        self.max_bytes = max_bytes
        self.root = Path(tempfile.mkdtemp(prefix="polyp-rt-uploads-"))

    def close(self) -> None:
        shutil.rmtree(self.root, ignore_errors=True)

    def refuse_size(self, size: int | None) -> UploadError:
        """The one message for an upload over the limit (`size` None: counted while it came)."""
        limit = f"{self.max_bytes / 1e6:g} MB (polyp-rt serve --max-upload-mb)"
        if size is None:
            return UploadError(f"the upload is larger than this server takes: up to {limit}", 413)
        return UploadError(f"the upload is {size / 1e6:.3g} MB; this server takes up to {limit}", 413)

    @asynccontextmanager
    async def receive(
        self, headers: Mapping[str, str], body: AsyncIterator[bytes]
    ) -> AsyncIterator[Received]:
        """The upload's files in a folder of their own, removed when the block ends (error or not)."""
        declared = headers.get("content-length", "")
        if declared.isdigit() and int(declared) > self.max_bytes:
            raise self.refuse_size(int(declared))
        kind = headers.get("content-type", "")
        if not kind.startswith("multipart/form-data"):
            raise UploadError(f"send the file as a form upload (multipart/form-data): {KINDS}", 415)
        folder = self.root / secrets.token_hex(8)
        folder.mkdir()
        try:
            yield await self._parse(kind, body, Received(folder))
        finally:
            shutil.rmtree(folder, ignore_errors=True)

    async def _parse(self, kind: str, body: AsyncIterator[bytes], received: Received) -> Received:
        from python_multipart.multipart import create_form_parser

        try:
            parser = create_form_parser(
                {"Content-Type": kind.encode("latin-1")},
                on_field=None,
                on_file=lambda part: self._keep(part, received),
                config={
                    "UPLOAD_DIR": str(received.folder),
                    "MAX_MEMORY_FILE_SIZE": 0,
                    "UPLOAD_DELETE_TMP": False,
                },
            )
            seen = 0
            async for chunk in body:
                seen += len(chunk)
                if seen > self.max_bytes:
                    raise self.refuse_size(None)
                parser.write(chunk)
            parser.finalize()
        except ValueError as exc:  # python-multipart: a malformed form
            raise UploadError(f"the upload is not a well-formed form ({exc})", 400) from exc
        if "file" not in received.files:
            raise UploadError(f"no file in the upload: choose {KINDS}", 400)
        return received

    @staticmethod
    def _keep(part: Any, received: Received) -> None:
        """A finished file part: stored under its field's name, or refused."""
        name = (part.field_name or b"").decode("latin-1")
        stream: IO[bytes] = part.file_object
        if name not in FIELDS or name in received.files:
            stream.close()
            raise UploadError(f"unexpected file field {name!r}: send one 'file' (and one 'mask')", 400)
        stored = received.folder / name
        if part.in_memory:  # an empty part never reached the disk
            stored.write_bytes(stream.getvalue())  # type: ignore[attr-defined]
            stream.close()
        else:
            stream.close()
            Path(part.actual_file_name.decode()).rename(stored)
        received.files[name] = stored
        received.names[name] = (part.file_name or b"").decode("utf-8", "replace")[:200]
