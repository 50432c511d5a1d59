#!/usr/bin/env bash
# The light install as a user gets it (`pip install polyp-rt`, no extras) in a fresh virtual
# environment: no PyTorch comes with it, and the bundled model runs the bundled clip end to end.
set -euo pipefail
cd "$(dirname "$0")/.."
PYTHON=${PYTHON:-python3}
where=$(mktemp -d)
trap 'rm -rf "$where"' EXIT
"$PYTHON" -m venv "$where/venv"
"$where/venv/bin/pip" install --quiet --upgrade pip
"$where/venv/bin/pip" install --quiet .
if "$where/venv/bin/python" -c "import torch" 2>/dev/null; then
  echo "light install: torch came with the base install" >&2
  exit 1
fi
cd "$where"  # away from the checkout: the installed package and its bundled samples are used
samples=$("$where/venv/bin/python" -c "from polyp_rt.realtime.config import SAMPLES; print(SAMPLES)")
"$where/venv/bin/polyp-rt" --source "$samples/demo.mp4" --headless --max-frames 60 \
  --record out.mp4 --truth "$samples/demo_masks" --stats-json stats.json
"$where/venv/bin/python" - <<'PY'
import json
report = json.load(open("stats.json"), parse_constant=lambda c: (_ for _ in ()).throw(ValueError(c)))
assert report["frames_processed"] == 60 and report["truth"]["images"] == 60, report
print(f"light install: 60 frames, Dice {report['truth']['dice']:.3f}, {report['engine']['backend']}")
PY
# the browser views travel with the package (templates, script, style) but need polyp-rt[web]
"$where/venv/bin/python" -c "
from importlib import resources
web = resources.files('polyp_rt.web')
assert all((web / p).is_file() for p in ('templates/live.html', 'templates/upload.html', 'static/live.js', 'static/upload.js', 'static/style.css'))"
code=0
"$where/venv/bin/polyp-rt" serve 2> serve.err || code=$?
if [ "$code" != 2 ] || ! grep -q 'polyp-rt\[web\]' serve.err; then
  echo "light install: polyp-rt serve without [web] exited $code: $(cat serve.err)" >&2
  exit 1
fi
echo "light install: polyp-rt serve asks for polyp-rt[web]"
