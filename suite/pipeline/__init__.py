"""The whole chain from one config: grow, train, sweep, select, merge, evaluate, report."""
