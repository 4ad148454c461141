"""The foundation every growbench package builds on: the error hierarchy, the YAML->dataclass loader, the registry of
shipped things, atomic writes and the shared settings (database path, benchmark mirror). It imports nothing else
from the project, so growth, training, suite and results can all use it."""
