"""`import espnet_distill` keeps ESPnet's import-time print off stdout, without touching logging."""

import subprocess
import sys

CHECK = """
import logging
import espnet_distill
import espnet.nets.pytorch_backend.transformer.attention
print("root handlers:", len(logging.getLogger().handlers))
"""


def test_espnets_flash_attention_print_is_kept_off_stdout_and_logging_is_left_to_the_program():
    result = subprocess.run([sys.executable, "-c", CHECK], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr[-2000:]
    assert "Failed to import Flash Attention" not in result.stdout + result.stderr
    # The program (ESPnet's trainer, the recipes' tools) configures logging; an import must not have.
    assert result.stdout.strip().splitlines()[-1] == "root handlers: 0"
