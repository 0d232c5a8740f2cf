"""espnet-distill: distillation of self-supervised speech models for ASR."""

from typing import Dict

from espnet_distill import seams as _seams

__version__ = "0.1.0"


def _espnet_asr_choices() -> Dict[str, Dict[str, type]]:
    from espnet_distill.asr.build import espnet_asr_choices

    return espnet_asr_choices()


# The two import hooks (docs/seams.md): ESPnet's ASR task learns this project's components when it is
# imported, and ESPnet's import-time print goes to the log instead of standard output.
_seams.install_component_registration(_espnet_asr_choices)
_seams.install_import_print_quieting()
