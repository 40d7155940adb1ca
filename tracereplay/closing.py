"""`Closing`: what is used in a `with` and ends with its own `close()`."""

from __future__ import annotations

from types import TracebackType
from typing import Self


class Closing:
    """A base for objects closed by `close()`: in a `with`, `__enter__` gives the object
    itself and `__exit__` closes it, on an error too (the error is not swallowed)."""

    def close(self) -> None:
        raise NotImplementedError

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()
