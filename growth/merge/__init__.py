"""Weighted merges of checkpoints: recipes (recipe.py), method plug-ins (methods.py, linear.py), streaming
execution (execute.py). `growbench merge` and the selector's `--build` both go through `plan_merge` then
`run_merge`."""
