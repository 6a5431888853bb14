"""score_windows cuts the windows the training datasets cut (window_starts + edge padding)."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from soundwatch.detectors.windows import score_windows
from soundwatch.training.data import pad_to, window_starts


@pytest.mark.parametrize("length,window,hop", [(20, 8, 4), (22, 8, 4), (8, 8, 3), (5, 8, 4),
                                               (1, 4, 2), (31, 16, 16), (40, 6, 1)])
def test_score_windows_match_the_training_windows(length, window, hop):
    x = np.random.default_rng(length).normal(size=(2, 3, length)).astype(np.float32)
    got = score_windows(torch.from_numpy(x), window, hop).numpy()  # [B, C, n, W]
    starts = window_starts(length, window, hop)
    want = np.stack([np.stack([pad_to(clip[:, s : s + window], window) for s in starts], axis=1)
                     for clip in x])
    np.testing.assert_array_equal(got, want)
    assert got[0, 0, -1, -1] == x[0, 0, -1]  # the last frame is always scored
