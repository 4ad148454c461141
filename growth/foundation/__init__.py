"""The foundation every growbench package builds on: the error hierarchy, the YAML->dataclass loader, the registry of
shipped things, atomic writes, the shared settings (database path, benchmark mirror) and the terminal (growbench's
lines and progress displays, library output captured into a log file). It imports nothing else from the project, so
growth, training, suite and results can all use it."""
