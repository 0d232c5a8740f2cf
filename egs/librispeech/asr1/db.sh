# shellcheck shell=bash
# Where the corpora and the teacher of this recipe live (nothing is downloaded).
# Override with environment variables, e.g. LIBRISPEECH=/corpora ./run.sh
LIBRISPEECH=${LIBRISPEECH:-downloads}   # holds LibriSpeech/{train-clean-100,...,test-other}
LIBRILIGHT=${LIBRILIGHT:-downloads}     # holds librispeech_finetuning/{1h,9h} (Libri-Light's fine-tuning sets)
HUBERT_BASE=${HUBERT_BASE:-downloads/hubert_base_ls960.pt}  # fairseq checkpoint of HuBERT Base
LIBRISPEECH_LM=${LIBRISPEECH_LM:-downloads/librispeech-lm-norm.txt.gz}  # the LM corpus (openslr.org/11)
