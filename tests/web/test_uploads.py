"""The upload page's endpoint over real HTTP: an image, its mask and the Dice, a clip, and every
kind of bad upload answered with one message and nothing left behind."""

from __future__ import annotations

import base64
import http.client
import io
import json
import socket
import threading
import zipfile
from contextlib import ExitStack
from pathlib import Path
from urllib.parse import urlsplit

import cv2
import numpy as np
import pytest

from polyp_rt.web.config import ServeConfig
from polyp_rt.web.server import start_upload_page


def form(**files: bytes) -> tuple[bytes, str]:
    """A multipart/form-data body with one file part per field (each named like a file)."""
    parts = [
        f'--b0undary\r\nContent-Disposition: form-data; name="{name}"; filename="{name}.bin"\r\n'
        "Content-Type: application/octet-stream\r\n\r\n".encode()
        + data
        + b"\r\n"
        for name, data in files.items()
    ]
    return b"".join(parts) + b"--b0undary--\r\n", "multipart/form-data; boundary=b0undary"


def post(base: str, body: bytes, kind: str, headers: dict[str, str] | None = None) -> tuple[int, dict]:
    parts = urlsplit(base)
    conn = http.client.HTTPConnection(parts.hostname, parts.port, timeout=120)
    try:
        conn.request("POST", "/analyse", body=body, headers={"Content-Type": kind, **(headers or {})})
        answer = conn.getresponse()
        return answer.status, json.loads(answer.read())
    finally:
        conn.close()


def analyse(base: str, **files: bytes) -> tuple[int, dict]:
    return post(base, *form(**files))


def png(array: np.ndarray) -> bytes:
    ok, data = cv2.imencode(".png", array)
    assert ok
    return data.tobytes()


def decoded(b64: str) -> np.ndarray:
    image = cv2.imdecode(np.frombuffer(base64.b64decode(b64), np.uint8), cv2.IMREAD_UNCHANGED)
    assert image is not None
    return image


def empty(folder: Path) -> bool:
    return not any(folder.iterdir())


@pytest.fixture
def image(tmp_path, polyp_image) -> bytes:
    return polyp_image(tmp_path / "polyp.png").read_bytes()


def disc_mask() -> np.ndarray:
    """The disc `polyp_image` draws, as a 0/255 mask."""
    mask = np.zeros((480, 640), np.uint8)
    cv2.circle(mask, (320, 240), 80, 255, -1)
    return mask


def test_an_image_comes_back_as_overlay_and_mask(upload_server, image):
    served = upload_server()
    status, result = analyse(served.base, file=image)
    assert status == 200, result
    assert (result["kind"], result["width"], result["height"], result["dice"]) == ("image", 640, 480, None)
    mask = decoded(result["mask_png"])
    overlay = decoded(result["overlay_png"])
    assert mask.shape == (480, 640) and set(np.unique(mask)) <= {0, 255}
    assert overlay.shape == (480, 640, 3)
    # the bundled model finds the disc: most of the predicted mask lies on it, most of it is covered
    on_disc = np.count_nonzero((mask > 0) & (disc_mask() > 0))
    assert on_disc > 0.8 * np.count_nonzero(disc_mask()) and on_disc > 0.8 * np.count_nonzero(mask)
    assert result["polyp"] is True
    assert np.abs(overlay.astype(int) - cv2.imdecode(np.frombuffer(image, np.uint8), 1)).max() > 40, (
        "drawn on"
    )
    assert empty(served.root)


def test_the_dice_against_an_uploaded_mask(upload_server, image):
    served = upload_server()
    predicted = decoded(analyse(served.base, file=image)[1]["mask_png"])
    p = np.count_nonzero(predicted)
    assert p > 1000
    # the prediction itself: every pixel agrees, Dice 2p / 2p = 1
    assert analyse(served.base, file=image, mask=png(predicted))[1]["dice"] == 1.0
    # its inverse: no polyp pixel in common, Dice 0
    assert analyse(served.base, file=image, mask=png(255 - predicted))[1]["dice"] == 0.0
    # the prediction's left half as the truth: t of its p pixels, all predicted: Dice 2t / (p + t)
    half = predicted.copy()
    half[:, 320:] = 0
    t = np.count_nonzero(half)
    status, result = analyse(served.base, file=image, mask=png(half))
    assert status == 200 and result["dice"] == pytest.approx(2 * t / (p + t), abs=1e-9)
    assert result["iou"] == pytest.approx(t / p, abs=1e-9)
    assert empty(served.root)


def test_a_clip_comes_back_as_two_videos(upload_server, synthetic_clip, decoded):
    import av

    served = upload_server()
    status, result = analyse(served.base, file=synthetic_clip.read_bytes())
    assert status == 200, result
    assert (result["kind"], result["frames"], result["width"], result["height"]) == ("clip", 36, 160, 128)
    for key in ("overlay_mp4", "mask_mp4"):
        with av.open(io.BytesIO(base64.b64decode(result[key]))) as container:
            frames = [f.to_ndarray(format="rgb24") for f in container.decode(video=0)]
        assert len(frames) == 36 and frames[0].shape == (128, 160, 3)
    assert empty(served.root)


def zip_of(data: bytes) -> bytes:
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w") as archive:
        archive.writestr("polyp.png", data)
    return out.getvalue()


@pytest.mark.parametrize(
    "what, files, status, message",
    [
        (
            "text",
            lambda im: {"file": b"just some text, not a picture\n"},
            415,
            "not an image or a video clip: upload an image (PNG",
        ),
        ("zip", lambda im: {"file": zip_of(im)}, 415, "that is a zip archive: upload one file, an image"),
        (
            "truncated PNG",
            lambda im: {"file": im[: len(im) // 2]},
            400,
            "the image is cut short (a truncated file): upload the whole file",
        ),
        ("empty", lambda im: {"file": b""}, 400, "the file is empty: upload an image"),
        ("no file", lambda im: {"mask": im}, 400, "no file in the upload: choose an image"),
        ("third field", lambda im: {"file": im, "other": im}, 400, "unexpected file field 'other'"),
        (
            "mask of another size",
            lambda im: {"file": im, "mask": png(np.zeros((10, 20), np.uint8))},
            400,
            "the mask is 20x10 and the image 640x480",
        ),
        ("truncated mask", lambda im: {"file": im, "mask": im[:500]}, 400, "the mask is cut short"),
        (
            "huge PNG header",
            lambda im: {"file": im[:16] + (30000).to_bytes(4, "big") * 2 + im[24:]},
            413,
            "the image is 30000x30000; this server takes up to 8.3 megapixels",
        ),
    ],
)
def test_a_bad_upload_gets_one_message_and_leaves_nothing(upload_server, image, what, files, status, message):
    served = upload_server()
    got, answer = analyse(served.base, **files(image))
    assert (got, list(answer)) == (status, ["error"]), answer
    assert answer["error"].startswith(message), answer["error"]
    assert "\n" not in answer["error"] and str(served.root) not in answer["error"]
    assert empty(served.root)


def test_a_clip_with_a_mask_or_too_long_is_refused(upload_server, synthetic_clip, image):
    served = upload_server(max_clip_seconds=1.0)  # the clip is 36 frames at 24 fps: 1.5 s
    status, answer = analyse(served.base, file=synthetic_clip.read_bytes())
    assert status == 413 and answer["error"].startswith(
        "the clip is 1.5 s long; this server takes clips up to 1 s"
    )
    status, answer = analyse(served.base, file=synthetic_clip.read_bytes(), mask=image)
    assert status == 400 and answer["error"].startswith("a mask goes with an image, not with a clip")
    broken = synthetic_clip.read_bytes()[:3000]  # its header, and no frame
    status, answer = analyse(served.base, file=broken)
    assert status == 400 and answer["error"].startswith("the clip"), answer
    assert empty(served.root)


def test_200_mb_is_refused_before_it_is_read(upload_server):
    """A real 200 MB upload: the answer comes at its Content-Length, while the body is still on its way."""
    served = upload_server()
    parts = urlsplit(served.base)
    body_size = 200_000_000
    with socket.create_connection((parts.hostname, parts.port), timeout=60) as sock:
        head = (
            f"POST /analyse HTTP/1.1\r\nHost: {parts.netloc}\r\nContent-Type: multipart/form-data; boundary=b0undary\r\n"
            f"Content-Length: {body_size}\r\n\r\n"
        )
        sock.sendall(head.encode())
        sent = threading.Event()

        def send_body() -> None:
            chunk = b"\0" * (1 << 20)
            try:
                for _ in range(body_size // len(chunk)):
                    sock.sendall(chunk)
            except OSError:  # the server answered and closed: the rest is not wanted
                pass
            sent.set()

        threading.Thread(target=send_body, daemon=True).start()
        answer = http.client.HTTPResponse(sock)
        answer.begin()
        assert answer.status == 413
        message = json.loads(answer.read())["error"]
        assert (
            message == "the upload is 200 MB; this server takes up to 50 MB (polyp-rt serve --max-upload-mb)"
        )
        sock.shutdown(socket.SHUT_RDWR)
        assert sent.wait(60)
    assert empty(served.root)


def test_an_upload_without_a_length_is_counted_as_it_comes(upload_server, image):
    served = upload_server(max_upload_mb=0.5)
    body, kind = form(file=image + b"\0" * 600_000)
    parts = urlsplit(served.base)
    conn = http.client.HTTPConnection(parts.hostname, parts.port, timeout=60)
    conn.request(
        "POST",
        "/analyse",
        body=iter([body[i : i + 65536] for i in range(0, len(body), 65536)]),
        headers={"Content-Type": kind},
        encode_chunked=True,
    )
    answer = conn.getresponse()
    assert answer.status == 413
    assert json.loads(answer.read())["error"] == (
        "the upload is larger than this server takes: up to 0.5 MB (polyp-rt serve --max-upload-mb)"
    )
    conn.close()
    assert empty(served.root)


def test_the_upload_folder_goes_when_the_server_stops(engine, model, image):
    with ExitStack() as stack:
        server = start_upload_page(ServeConfig(listen="127.0.0.1:0"), engine, model, stack)
        assert server.views.uploads is not None
        root = server.views.uploads.root
        assert root.is_dir() and analyse(server.access.address.url(""), file=image)[0] == 200
    assert not root.exists()
