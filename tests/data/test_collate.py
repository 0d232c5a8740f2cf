"""PadCollate: ESPnet's batch layout (padded arrays and <name>_lengths)."""

import numpy as np
import torch

from espnet_distill.data.collate import PadCollate


def test_pads_floats_with_zero_and_token_ids_with_minus_one():
    data = [
        ("a", {"speech": np.ones(3, dtype=np.float32), "text": np.array([4, 5])}),
        ("b", {"speech": np.full(5, 2.0, dtype=np.float32), "text": np.array([7])}),
    ]
    utts, batch = PadCollate()(data)
    assert utts == ["a", "b"]
    torch.testing.assert_close(batch["speech"], torch.tensor([[1, 1, 1, 0, 0], [2, 2, 2, 2, 2]], dtype=torch.float32))
    assert batch["speech_lengths"].tolist() == [3, 5]
    assert batch["text"].tolist() == [[4, 5], [7, -1]] and batch["text_lengths"].tolist() == [2, 1]
