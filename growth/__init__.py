"""Model surgery on Hugging Face checkpoints: streaming I/O, growth operators and plans, the weighted merge."""
