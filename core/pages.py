"""The one way the project's HTML pages are made: Jinja2 templates of a package, every value escaped."""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from jinja2 import Environment


def page_templates(package: str) -> Environment:
    """The templates/ folder of `package`: autoescape on, an undefined name an error, tidy blocks.

    Jinja2 comes with the extras that make pages (polyp-rt[batch], polyp-rt[web])."""
    from jinja2 import Environment, PackageLoader, StrictUndefined

    return Environment(
        loader=PackageLoader(package, "templates"),
        autoescape=True,
        undefined=StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )
