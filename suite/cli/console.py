"""The CLI's two rich consoles (results on stdout, errors on stderr), shared by every command module.

Off a terminal (a pipe, a file, CI) rich would lay tables out for 80 columns and cut or wrap their cells; there the
consoles are as wide as the content, so every cell arrives whole and every row on one line.
"""

from rich.console import Console, ConsoleDimensions

UNBOUNDED = 100_000
"""The width off a terminal: wider than any table, so rich never cuts a cell (tables take their natural width)."""


class _Console(Console):
    """A console whose width is the terminal's on a terminal and unbounded elsewhere (checked at every print, since
    a test runner swaps the streams after import)."""

    @property
    def size(self) -> ConsoleDimensions:
        size = super().size
        return size if self.is_terminal else ConsoleDimensions(UNBOUNDED, size.height)


console = _Console()
err_console = _Console(stderr=True)
