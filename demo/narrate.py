"""Progress output a person can follow: numbered steps with timings, short explanations,
the commands being run and what they printed."""

from __future__ import annotations

import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager


class Narrator:
    def __init__(self, total_steps: int) -> None:
        self.total = total_steps
        self.t0 = time.monotonic()

    def clock(self) -> str:
        s = int(time.monotonic() - self.t0)
        return f"{s // 60:02d}:{s % 60:02d}"

    @staticmethod
    def _print(text: str = "") -> None:
        print(text, flush=True)

    def banner(self, text: str) -> None:
        self._print(f"\n=== {text} ===")

    @contextmanager
    def step(self, n: int, title: str, why: str = "") -> Iterator[None]:
        self._print(f"\n[{n}/{self.total}] {title}   (at {self.clock()})")
        if why:
            for line in why.strip().splitlines():
                self._print(f"      {line.strip()}")
        t = time.monotonic()
        yield
        self._print(f"      ... done in {time.monotonic() - t:.1f}s")

    def say(self, text: str) -> None:
        for line in text.rstrip().splitlines():
            self._print(f"      {line}")

    def cmd(self, display: str, output: str = "") -> None:
        """A command the demo runs for you, as you would type it, and what it printed."""
        self._print(f"      $ {display}")
        for line in output.rstrip().splitlines():
            self._print(f"        {line}" if line.strip() else "")

    def error(self, text: str) -> None:
        print(f"\n!! {text}", file=sys.stderr, flush=True)
