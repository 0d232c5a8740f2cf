"""ESPnet's language-model task (``espnet2.tasks.lm``) on this project's tokenizer and safe trainer.

``python -m espnet_distill.bin.lm_train --config conf/lm/<name>.yaml ...``
trains ESPnet's own LM classes (``lm: seq_rnn`` or ``lm: transformer``, with
``lm_conf``) with ESPnet's trainer.  Two things differ from ESPnet's task:

- the text is tokenized by :class:`espnet_distill.text.tokens.Tokenizer`, the
  tokenizer the CTC models of this project are fine-tuned with, so that the LM
  and the ASR model agree on every token id;
- training and model loading go through :class:`espnet_distill.tasks.abs_task.SafeTask`
  (nothing pickled runs; saves are atomic).

The ``config.yaml`` and model files it writes are ESPnet's: ESPnet's own
``Speech2Text`` (``lm_train_config``, ``lm_file``) loads them unchanged.
"""

import argparse
from typing import Callable, Optional

from espnet2.tasks.lm import LMTask as ESPnetLMTask

from espnet_distill.tasks.abs_task import SafeTask
from espnet_distill.tasks.asr import TokenizeText
from espnet_distill.text.tokens import Tokenizer, read_token_list


class LMTask(SafeTask, ESPnetLMTask):
    """ESPnet's LM task with this project's tokenization, safe loading and atomic saves."""

    @classmethod
    def build_preprocess_fn(cls, args: argparse.Namespace, train: bool) -> Optional[Callable]:
        token_list = read_token_list(args.token_list) if isinstance(args.token_list, str) else args.token_list
        return TokenizeText(Tokenizer(token_list, args.token_type, args.bpemodel))
