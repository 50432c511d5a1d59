"""The live view's hand-over: the one-slot box between the pipeline and the encoder, and the frame
on the wire."""

from __future__ import annotations

import json
import struct
import threading

import cv2
import numpy as np

from polyp_rt.realtime.frame import Frame, Stamp
from polyp_rt.web.feed import LiveFeed, NewestBox, Shown


def test_the_box_keeps_only_the_newest_and_counts_the_rest():
    box: NewestBox[int] = NewestBox()
    for item in (1, 2, 3):
        box.put(item)
    assert box.take() == 3 and box.replaced == 2
    got: list[int | None] = []
    taker = threading.Thread(target=lambda: got.append(box.take()))
    taker.start()  # waits: the slot is empty
    box.put(4)
    taker.join(10)
    assert got == [4]
    box.close()
    assert box.take() is None, "closed: the encoder stops"


def test_nothing_is_copied_while_no_one_watches():
    feed = LiveFeed()
    frame = Frame(7, 0.25, 1_000_000_000, np.zeros((48, 64, 3), np.uint8))
    frame.overlay = frame.rgb
    feed.offer(frame)
    assert feed.offered == 1 and feed.box.replaced == 0
    feed.viewers = 1
    feed.offer(frame)
    feed.offer(frame)
    assert feed.box.replaced == 1, "the second replaced the first before any encoder took it"


def test_a_frame_on_the_wire_is_header_and_jpeg():
    feed = LiveFeed()
    picture = np.zeros((48, 64, 3), np.uint8)
    picture[:, :32] = (255, 0, 0)  # red on the left, in RGB
    message = feed.encode(Shown(picture, 7, 2_500_000_000, 12.5, True, 29.97))
    (length,) = struct.unpack(">I", message[:4])
    header = json.loads(message[4 : 4 + length])
    assert header["index"] == 7 and header["t_capture_ms"] == 2500.0 and header["e2e_ms"] == 12.5
    assert header["polyp"] is True and (header["width"], header["height"]) == (64, 48)
    bgr = cv2.imdecode(np.frombuffer(message[4 + length :], np.uint8), cv2.IMREAD_COLOR)
    assert bgr.shape == (48, 64, 3)
    assert bgr[24, 8, 2] > 200 and bgr[24, 8, 0] < 60, "still red: RGB became BGR once, for the JPEG"
    assert bgr[24, 56].max() < 60


def test_the_sink_takes_the_overlay_stamp_for_the_e2e():
    feed = LiveFeed()
    feed.viewers = 1
    frame = Frame(0, 0.0, 1_000_000_000, np.zeros((8, 8, 3), np.uint8))
    frame.overlay = frame.rgb
    frame.stamps[Stamp.OVERLAID] = 1_040_000_000  # 40 ms after capture
    frame.polyp = True
    feed.offer(frame)
    shown = feed.box.take()
    assert shown is not None and shown.e2e_ms == 40.0 and shown.polyp
    assert shown.rgb is not frame.overlay, "a copy: the GPU path reuses its buffers"
