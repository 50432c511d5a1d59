"""Make the README's pictures from a real annotated recording (e.g. out/demo.mp4 from `make demo`).

    python scripts/readme_media.py out/demo.mp4 --frame 75 --gif-frames 60:180:4

writes docs/demo_frame.png (one annotated frame) and docs/demo.gif (a short strip).
"""

from __future__ import annotations

import argparse
from pathlib import Path

import av
from PIL import Image


def frames(path: Path) -> list[Image.Image]:
    with av.open(str(path)) as container:
        return [frame.to_image() for frame in container.decode(video=0)]


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("recording", type=Path)
    parser.add_argument("--frame", type=int, default=75, help="frame for docs/demo_frame.png")
    parser.add_argument("--gif-frames", default="60:180:4", help="start:stop:step for docs/demo.gif")
    parser.add_argument("--gif-width", type=int, default=400)
    parser.add_argument("--out", type=Path, default=Path("docs"))
    args = parser.parse_args()

    video = frames(args.recording)
    args.out.mkdir(exist_ok=True)
    video[args.frame].save(args.out / "demo_frame.png")
    start, stop, step = (int(v) for v in args.gif_frames.split(":"))
    strip = [f.resize((args.gif_width, args.gif_width * f.height // f.width)) for f in video[start:stop:step]]
    fps = 30 / step
    strip[0].save(
        args.out / "demo.gif",
        save_all=True,
        append_images=strip[1:],
        duration=round(1000 / fps),
        loop=0,
        optimize=True,
    )
    print(f"wrote {args.out / 'demo_frame.png'} and {args.out / 'demo.gif'} ({len(strip)} frames)")


if __name__ == "__main__":
    main()
