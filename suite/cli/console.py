"""The CLI's two rich consoles (results on stdout, errors on stderr), shared by every command module."""

from rich.console import Console

console = Console()
err_console = Console(stderr=True)
