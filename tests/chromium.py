"""scripts/chromium_cdp.py for the tests (scripts/ is not a package): the browser and its flags."""

import importlib.util
from pathlib import Path

_spec = importlib.util.spec_from_file_location(
    "chromium_cdp", Path(__file__).resolve().parents[1] / "scripts" / "chromium_cdp.py"
)
assert _spec is not None and _spec.loader is not None
cdp = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(cdp)
