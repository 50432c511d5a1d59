"""What is drawn: the tint only where the mask is, outlines on the polyp's edge, the HUD."""

import cv2
import numpy as np

from polyp_rt.realtime.config import OverlayConfig
from polyp_rt.realtime.frame import Frame, now_ns
from polyp_rt.realtime.overlay import Hud, Overlay, outlines, tint


def disc_mask(height, width, center, radius):
    mask = np.zeros((height, width), np.uint8)
    cv2.circle(mask, center, radius, 1, -1)
    return mask


def test_tint_blends_inside_the_mask_and_leaves_the_rest():
    rng = np.random.default_rng(0)
    rgb = rng.integers(0, 256, (120, 160, 3), dtype=np.uint8)
    mask = disc_mask(120, 160, (100, 50), 20)
    out = tint(rgb, mask, (10, 250, 30), 0.4)
    inside = mask.astype(bool)
    assert np.array_equal(out[~inside], rgb[~inside])
    expected = rgb[inside] * 0.6 + np.array([10, 250, 30]) * 0.4
    assert np.abs(out[inside].astype(float) - expected).max() <= 1
    empty = tint(rgb, np.zeros_like(mask), (10, 250, 30), 0.4)
    assert np.array_equal(empty, rgb) and empty is not rgb


def test_outlines_of_a_full_hd_mask_lie_on_its_edge():
    mask = disc_mask(1080, 1920, (700, 500), 180)
    full, _ = cv2.findContours(mask, cv2.RETR_EXTERNAL, cv2.CHAIN_APPROX_NONE)
    traced = outlines(mask)  # traced at half resolution
    assert len(traced) == 1
    distances = [abs(cv2.pointPolygonTest(full[0], (float(x), float(y)), True)) for x, y in traced[0][:, 0]]
    assert max(distances) <= 2.0
    small = disc_mask(480, 640, (300, 200), 60)
    assert len(outlines(small)[0]) == len(cv2.findContours(small, 0, cv2.CHAIN_APPROX_SIMPLE)[0][0])


def test_draw_uses_the_gpu_tint_in_place_and_honours_the_toggles():
    rgb = np.full((240, 320, 3), 90, np.uint8)
    mask = disc_mask(240, 320, (160, 120), 40)
    overlay = Overlay(OverlayConfig(hud=False, alert_min_frames=1, alert_hold=0))  # every mask drawn
    blended = tint(rgb, mask, overlay.style.color, 0.4)
    frame = Frame(0, 0.0, now_ns(), rgb, mask=mask, blended=blended)
    overlay.draw(frame, Hud())
    out = frame.overlay
    assert out is blended
    assert (out[120, 160] != rgb[120, 160]).any()  # tinted centre
    edge = out[116:125, 116:125]  # around the disc's left edge, (120, 120)
    assert np.all(edge == overlay.style.color, axis=-1).any()  # the outline
    overlay.style.mask, overlay.style.contours = False, False
    overlay.draw(frame, Hud())
    assert np.array_equal(frame.overlay, rgb) and frame.overlay is not rgb


def test_indicator_follows_the_hysteresis_and_redraw_keeps_it():
    overlay = Overlay(OverlayConfig(presence_on=2, presence_window=3, presence_off=2))
    rgb = np.zeros((60, 80, 3), np.uint8)
    polyp, clear = disc_mask(60, 80, (40, 30), 10), np.zeros((60, 80), np.uint8)
    states = []
    for mask in (polyp, clear, polyp, clear, polyp, clear, clear, polyp):
        frame = Frame(len(states), 0.0, now_ns(), rgb, mask=mask)
        overlay.draw(frame, Hud())
        states.append(frame.polyp)
    assert states == [False, False, True, True, True, True, False, False]
    overlay.redraw(frame, Hud(status="reconnecting 1/3"))  # a status redraw does not count a frame
    assert overlay.presence.recent[-1] is True and len(overlay.presence.recent) == 3


def test_the_passthrough_hud_says_the_masks_age_and_a_stall_on_red():
    assert Hud(30.0, 2.1, "openvino cpu", passthrough=True, mask_age_ms=35.0).line() == (
        "30.0 fps  video  2.1 ms  mask  35 ms old  openvino cpu"
    )
    assert "no mask" in Hud(passthrough=True).line()
    rgb = np.full((240, 320, 3), 90, np.uint8)
    overlay = Overlay(OverlayConfig())
    frame = Frame(0, 0.0, now_ns(), rgb)  # no mask: none young enough
    calm = Hud(passthrough=True)
    overlay.draw(frame, calm)
    calm_picture = frame.overlay
    stalled = Hud(passthrough=True, alert="MODEL STALLED: no mask for 2.1 s")
    overlay.draw(frame, stalled)
    red = np.all(frame.overlay == (200, 0, 0), axis=2)
    assert red.any() and not np.all(calm_picture == (200, 0, 0), axis=2).any()
    rows = np.flatnonzero(red.any(axis=1))
    assert rows.min() > 0 and rows.max() < 80  # its own line, under the HUD's, at the top
    assert np.array_equal(frame.rgb, np.full((240, 320, 3), 90, np.uint8))  # drawn on a copy
