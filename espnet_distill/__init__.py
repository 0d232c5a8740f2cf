"""espnet-distill: distillation of self-supervised speech models for ASR."""

from espnet_distill import seams as _seams

__version__ = "0.1.0"

# The two import hooks (docs/seams.md): ESPnet's ASR task learns this project's components when it is
# imported, and ESPnet's import-time print goes to the log instead of standard output.
_seams.install_component_registration()
_seams.install_import_print_quieting()
