"""The alert gate: what of the mask is drawn, region by region, frame by frame."""

from __future__ import annotations

import cv2
import numpy as np
import pytest

from polyp_rt.core.errors import PolypRtError
from polyp_rt.realtime.alert_gate import AlertGate, _to_grid, cell_size


def disc(shape, centre, radius):
    mask = np.zeros(shape, np.uint8)
    cv2.circle(mask, centre, radius, 1, -1)
    return mask


def drawn_areas(gate, masks):
    return [int(gate(m).sum()) for m in masks]


def test_every_mask_is_drawn_as_it_is_without_a_gate():
    gate = AlertGate(1, 0)
    mask = disc((48, 64), (20, 20), 6)
    assert gate(mask) is mask and gate.passes_all


def test_a_region_is_drawn_from_its_nth_frame_in_a_row():
    gate = AlertGate(3, 0)
    moving = [disc((120, 160), (40 + 4 * i, 60), 12) for i in range(5)]  # overlapping frame to frame
    area = int(moving[0].sum())
    assert drawn_areas(gate, moving) == [0, 0, area, area, area]
    assert gate.counts.held_back == 2 and gate.counts.drawn == 3


def test_one_and_two_frame_flickers_never_reach_the_screen():
    gate = AlertGate(3, 0)
    empty = np.zeros((120, 160), np.uint8)
    blob = disc((120, 160), (100, 30), 10)
    frames = [blob, empty, blob, blob, empty, empty, blob, empty]
    assert drawn_areas(gate, frames) == [0] * len(frames)


def test_a_flicker_beside_a_drawn_polyp_is_held_back_alone():
    gate = AlertGate(3, 0)
    polyp = disc((120, 160), (40, 60), 14)
    for _ in range(3):
        gate(polyp)
    flicker = disc((120, 160), (130, 20), 8)
    out = gate(polyp | flicker)
    assert np.array_equal(out, polyp)  # the region that persisted, not the one-frame one


def test_a_drawn_region_is_held_through_a_short_dropout_and_taken_back_at_once():
    gate = AlertGate(3, 2)
    polyp = disc((120, 160), (40, 60), 14)
    empty = np.zeros_like(polyp)
    area = int(polyp.sum())
    # drawn from the 3rd frame; lost for 2 frames: drawn where it was; back: drawn at once
    assert drawn_areas(gate, [polyp, polyp, polyp, empty, empty, polyp]) == [0, 0, area, area, area, area]
    assert gate.counts.held_over == 2
    # lost for 3 frames: off on the 3rd, and back it waits its 3 frames again
    assert drawn_areas(gate, [empty, empty, empty, polyp, polyp, polyp]) == [area, area, 0, 0, 0, area]


def test_regions_of_a_full_hd_mask_are_drawn_pixel_for_pixel():
    shape = (1080, 1920)
    assert cell_size(shape) == 4 and cell_size((480, 640)) == 2 and cell_size((128, 160)) == 1
    polyp = disc(shape, (700, 500), 150)
    polyp[500, 1000:1400] = 1  # a one-pixel line: thinner than a cell, still the polyp's
    gate = AlertGate(2, 0)
    gate(polyp)
    assert np.array_equal(gate(polyp), polyp)
    speck = polyp.copy()
    speck[900:903, 1700:1702] = 1  # a new 3 x 2 speck elsewhere: held back, the rest drawn exactly
    assert np.array_equal(gate(speck), polyp)


@pytest.mark.parametrize("step", [2, 3, 4, 7])
def test_a_grid_cell_counts_when_any_of_its_pixels_is_set(step):
    for y in range(step):
        for x in range(step):
            mask = np.zeros((5 * step + 1, 4 * step + 3), np.uint8)
            mask[2 * step + y, step + x] = 1
            grid = _to_grid(mask, step)
            assert grid.sum() == 1 and grid[2, 1] == 1


def test_a_new_frame_size_starts_afresh_and_bad_settings_are_refused():
    gate = AlertGate(2, 1)
    gate(disc((120, 160), (40, 60), 14))
    assert gate(disc((240, 320), (80, 120), 28)).sum() == 0  # not a continuation
    with pytest.raises(PolypRtError, match="--alert-min-frames >= 1"):
        AlertGate(0, 0)


def frame_with(mask, blended=None):
    from polyp_rt.realtime.frame import Frame, now_ns

    rgb = np.full((*mask.shape, 3), 90, np.uint8)
    frame = Frame(0, 0.0, now_ns(), rgb)
    frame.mask, frame.blended = mask, blended
    return frame


def test_the_overlay_draws_only_what_the_gate_lets_through():
    from polyp_rt.realtime.config import OverlayConfig
    from polyp_rt.realtime.overlay import Hud, Overlay

    overlay = Overlay(OverlayConfig(alert_min_frames=2, alert_hold=0, hud=False))
    polyp = disc((120, 160), (60, 60), 20)
    first, second = frame_with(polyp), frame_with(polyp)
    overlay.draw(first, Hud())
    overlay.draw(second, Hud())
    assert np.array_equal(first.overlay, first.rgb)  # held back: nothing drawn
    assert not first.alert.any() and first.alert_area() == 0.0 and first.mask_area() > 0
    assert second.alert is second.mask and (second.overlay != second.rgb).any()


def test_a_gpu_tinted_frame_is_not_shown_while_the_gate_holds_it_back():
    from polyp_rt.realtime.config import OverlayConfig
    from polyp_rt.realtime.overlay import Hud, Overlay

    overlay = Overlay(OverlayConfig(alert_min_frames=3, hud=False))
    polyp = disc((120, 160), (60, 60), 20)
    tinted = np.full((120, 160, 3), 90, np.uint8)
    tinted[polyp > 0] = (0, 255, 0)  # as the GPU stage blends it, before the gate
    frame = frame_with(polyp, blended=tinted)
    frame.outlined = True
    overlay.draw(frame, Hud())
    assert np.array_equal(frame.overlay, frame.rgb)
