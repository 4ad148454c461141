"""lm-eval task YAMLs of the built-in tiny suite (suite/eval/suites/tiny-builtin.yaml) and the code generating their docs."""
