"""Batch collation for ESPnet's iterators: pad each array, add ``<name>_lengths``.

Written here rather than imported from ``espnet2.train.collate_fn``, whose
module imports ESPnet's text front-ends (and with them NLTK, which tries to
download data at import time on an offline machine).
"""

from typing import Collection, Dict, List, Tuple

import numpy as np
import torch


class PadCollate:
    """``[(utt_id, {name: array})]`` to ``(utt_ids, {name: padded tensor, name_lengths: tensor})``."""

    def __init__(self, float_pad_value: float = 0.0, int_pad_value: int = -1) -> None:
        self.float_pad_value = float_pad_value
        self.int_pad_value = int_pad_value

    def __call__(
        self, data: Collection[Tuple[str, Dict[str, np.ndarray]]]
    ) -> Tuple[List[str], Dict[str, torch.Tensor]]:
        utt_ids = [utt for utt, _ in data]
        batch: Dict[str, torch.Tensor] = {}
        for name in data[0][1] if data else []:
            arrays = [torch.from_numpy(np.asarray(item[name])) for _, item in data]
            pad = self.float_pad_value if arrays[0].is_floating_point() else self.int_pad_value
            lengths = torch.tensor([a.shape[0] for a in arrays], dtype=torch.long)
            padded = arrays[0].new_full((len(arrays), int(lengths.max()), *arrays[0].shape[1:]), pad)
            for i, array in enumerate(arrays):
                padded[i, : array.shape[0]] = array
            batch[name] = padded
            if arrays[0].ndim > 0:
                batch[f"{name}_lengths"] = lengths
        return utt_ids, batch

    def __repr__(self) -> str:
        return f"{self.__class__.__name__}(float_pad_value={self.float_pad_value}, int_pad_value={self.int_pad_value})"
