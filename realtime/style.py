"""How a mask is drawn, held once for both drawing paths: the CPU overlay and the GPU stage."""

from __future__ import annotations

from dataclasses import dataclass

from polyp_rt.core.errors import PolypRtError
from polyp_rt.realtime.config import OverlayConfig


def parse_color(text: str) -> tuple[int, int, int]:
    """`R,G,B` (each 0..255) as a tuple; a one-line error naming --color otherwise."""
    try:
        r, g, b = (int(v) for v in text.split(","))
    except ValueError as exc:
        raise PolypRtError(f"--color {text!r}: write a colour as R,G,B, e.g. 0,255,0") from exc
    if not all(0 <= v <= 255 for v in (r, g, b)):
        raise PolypRtError(f"--color {text!r}: each of R,G,B is 0..255")
    return (r, g, b)


@dataclass
class OverlayStyle:
    """The tint's colour and opacity and what is shown. `Overlay` makes it from the flags and
    the GPU stage shares the same object, so the window's keys (`mask`, `contours`) switch
    both paths at once."""

    color: tuple[int, int, int]  # RGB, of the tint and the outline
    alpha: float  # opacity of the tint
    mask: bool  # the tint is shown
    contours: bool  # the outline is drawn

    @classmethod
    def from_config(cls, config: OverlayConfig) -> OverlayStyle:
        return cls(parse_color(config.color), config.mask_alpha, config.mask_alpha > 0, config.contours)


def outline_width(height: int) -> int:
    """Line width of a mask outline on a frame this tall (the same on both paths)."""
    return max(2, height // 270)
