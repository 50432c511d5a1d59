"""docs/USAGE.md is what the flags say: regenerate it with `python -m polyp_rt.cli.usage > docs/USAGE.md`."""

from pathlib import Path

from polyp_rt.cli.main import COMMANDS, build_parser
from polyp_rt.cli.usage import usage_markdown

PAGE = Path(__file__).resolve().parents[1] / "docs" / "USAGE.md"


def test_usage_page_is_current():
    assert PAGE.read_text() == usage_markdown(), (
        "docs/USAGE.md is stale: run `python -m polyp_rt.cli.usage > docs/USAGE.md`"
    )


def test_every_flag_of_every_command_is_on_the_page():
    page = PAGE.read_text()
    parser = build_parser()
    subparsers = next(a for a in parser._actions if a.dest == "command").choices
    for name in COMMANDS:
        section = page.split(f"## `polyp-rt {name}`", 1)[1].split("\n## ", 1)[0]
        for action in subparsers[name]._actions:
            flags = [o for o in action.option_strings if o.startswith("--") and not o.startswith("--no-")]
            if not flags or flags[-1] in ("--help", "--verbose", "--debug"):
                continue
            assert f"`{flags[-1]}" in section, f"{name} {flags[-1]} is not on docs/USAGE.md"
