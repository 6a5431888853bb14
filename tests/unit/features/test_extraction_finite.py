"""Features that come out of a front-end as NaN or Inf are refused, naming the file."""

import numpy as np
import pytest
import soundfile as sf
import torch

from soundwatch.errors import AudioError
from soundwatch.features.extraction import extract, featurize_signal


class Squarer(torch.nn.Module):
    """A front-end that overflows float32 for loud input (as a power spectrum can)."""

    name = "squarer"
    sr = 16000

    def forward(self, x):
        return (x * 1e20) ** 2


def test_non_finite_features_raise_audio_error_naming_the_file(tmp_path):
    quiet, loud = tmp_path / "quiet.wav", tmp_path / "loud.wav"
    sf.write(quiet, np.zeros(1600, np.float32), 16000, subtype="FLOAT")
    sf.write(loud, np.full(1600, 0.5, np.float32), 16000, subtype="FLOAT")
    assert np.isfinite(extract([quiet], Squarer())[0]).all()
    with pytest.raises(AudioError) as info:
        extract([quiet, loud], Squarer())
    assert str(loud) in str(info.value) and "squarer" in str(info.value)
    with pytest.raises(AudioError, match="window 3"):
        featurize_signal(np.full(1600, 0.5, np.float32), Squarer(), where="window 3")
