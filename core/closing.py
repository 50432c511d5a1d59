"""`with thing:` for whatever holds a resource and frees it in `close()`."""

from __future__ import annotations

from typing import Self


class Closing:
    """Leaving the `with` block calls `close()`, however it is left; `close()` is the subclass's."""

    def close(self) -> None:
        """Free what is held; a subclass's own."""
        raise NotImplementedError

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
