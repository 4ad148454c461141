"""CLI command groups; each module exposes `register(app)` and is listed once in `suite.cli`."""
