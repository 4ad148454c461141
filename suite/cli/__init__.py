"""The `growbench` command line (suite.cli.app) and one module per command group."""

from suite.cli.app import app, main

__all__ = ["app", "main"]
