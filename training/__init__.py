"""Continual pre-training: Muon/AdamW, data mixtures and packing, the loop, checkpoints and resume (FSDP2-ready)."""
