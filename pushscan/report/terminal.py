"""How text reports meet a terminal, a file or a pipe, one convention for every command:

- on a terminal, lines wrap at its width, at spaces only (an address or a word is never
  cut) with a hanging indent; written to a file or a pipe, nothing wraps: a finding is one
  line, whole for grep;
- colour only where asked: ``--color always``, or ``auto`` (the default) on a terminal
  without ``NO_COLOR`` set (https://no-color.org);
- text is printed literally (file names with ``[`` or ``]`` too): nothing is markup.

Colours are rich styles rendered to ANSI codes; the layout is plain text, so that a
report of 50,000 sessions is written in linear time (a rich table costs 1.5 ms a row).
"""
from __future__ import annotations

import os
import shutil
import textwrap
from typing import Optional, TextIO

from rich.color import ColorSystem
from rich.style import Style

COLOR_CHOICES = ("auto", "always", "never")
MIN_WIDTH = 40


def use_color(choice: Optional[str], stream: TextIO) -> bool:
    """Whether to colour: ``always``/``never``, or on a terminal unless NO_COLOR is set
    (``auto`` or None)."""
    if choice == "always":
        return True
    if choice == "never":
        return False
    if os.environ.get("NO_COLOR"):
        return False
    return bool(getattr(stream, "isatty", lambda: False)())


def width_of(stream: TextIO) -> Optional[int]:
    """The terminal's width when ``stream`` is one, else None (no wrapping)."""
    if not getattr(stream, "isatty", lambda: False)():
        return None
    return max(MIN_WIDTH, shutil.get_terminal_size((80, 24)).columns)


class Terminal:
    """Writes lines to ``out``: wrapped to ``width`` (None: not wrapped), coloured if
    ``color``."""

    def __init__(self, out: TextIO, color: bool, width: Optional[int]) -> None:
        self.out = out
        self.color = color
        self.width = width
        self._styles: dict[str, Style] = {}

    def style(self, text: str, style: str) -> str:
        """``text`` in a rich style ("bold red") when colouring, else as it is."""
        if not self.color or not style:
            return text
        st = self._styles.get(style)
        if st is None:
            st = self._styles[style] = Style.parse(style)
        return st.render(text, color_system=ColorSystem.STANDARD)

    def line(self, text: str = "", indent: str = "", hang: str = "  ",
             styled: Optional[str] = None) -> None:
        """One logical line: ``text`` after ``indent``, wrapped with ``hang`` more indent
        on a terminal; ``styled``: the same text with colour codes, written when it fits
        (colour is for terminals, where a line that wraps loses it rather than be cut)."""
        if self.width is None or len(indent) + len(text) <= self.width:
            self.out.write(indent + (styled if styled is not None and self.color else text) + "\n")
            return
        for part in textwrap.wrap(text, self.width, initial_indent=indent,
                                  subsequent_indent=indent + hang, break_long_words=False,
                                  break_on_hyphens=False):
            self.out.write(part + "\n")

    def raw(self, text: str) -> None:
        """Text written as it is (it holds its own line ends)."""
        self.out.write(text)
