"""Selection: from stored benchmark scores to a merge recipe (strategies as plug-ins, role recipes as data)."""
