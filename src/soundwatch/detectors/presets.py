"""Registered detector presets (timm-style entry points): today's tuned compositions by name.

Each entry function returns a :class:`~soundwatch.detectors.composed.ComposedDetector`;
``create_detector(name, **overrides)`` applies overrides on top. The YAML presets under
``soundwatch/configs/`` (``--config cnn1d-synthetic``) are further tuned overrides of these.
"""

from __future__ import annotations

from typing import Any

from soundwatch.detectors.composed import ComposedDetector
from soundwatch.detectors.ensemble import EnsembleDetector
from soundwatch.detectors.registry import DEFAULT_DETECTOR, register_detector

__all__ = [
    "DEFAULT_DETECTOR", "ROBUST_MEMBERS", "ae", "ae_mahalanobis", "cnn1d", "embedding",
    "embedding_finetuned", "ensemble", "gmm", "knn", "knn_frames", "mahalanobis",
    "mahalanobis_hf", "robust", "unet1d_ae", "vae1d", "wavevision",
]

ROBUST_MEMBERS: tuple[str, ...] = ("mahalanobis", "mahalanobis-hf", "knn", "knn-frames",
                                   "embedding")
"""The default's members: full-band and high-band clip statistics (Mahalanobis, k-NN),
log-mel frames (k-NN) and a pretrained embedding (CREPE tiny, k-NN)."""

_CLASSICAL_TEST = {"frontend_params": {"n_mels": 32}}
_NETWORK_TEST: dict[str, Any] = {"training__epochs": 1, "training__batch_size": 32}
_CNN_TEST: dict[str, Any] = {
    "training": {"epochs": 1, "batch_size": 4, "val_fraction": 0.0},
    "encoder__preset": "tiny",
    "frontend_params": {"n_mels": 16, "n_fft": 512, "hop_length": 256},
    # pitch shifting is left out: librosa's first call alone takes seconds
    "objective__anomaly_kinds": "noise,tone,impulses,burst,speed,notch",
}

_CNN_TRAINING = {"epochs": 30, "batch_size": 32, "lr": 1e-3, "optimizer": "adamw",
                 "weight_decay": 1e-4, "scheduler": "cosine", "val_fraction": 0.1}


@register_detector("gmm", test_params={**_CLASSICAL_TEST, "scorer__n_components": 2})
def gmm() -> ComposedDetector:
    """Gaussian mixture on standardised log-mel statistics; score = negative log-likelihood."""
    return ComposedDetector(frontend="logmel", pooling="meanstd", scorer="gmm")


@register_detector("knn", test_params={**_CLASSICAL_TEST, "scorer__n_neighbors": 2})
def knn() -> ComposedDetector:
    """Mean distance to the 5 nearest training clips (standardised log-mel statistics)."""
    return ComposedDetector(
        frontend="logmel", pooling="meanstd", scorer="knn",
        scorer_params={"n_neighbors": 5, "metric": "euclidean", "domain_aware": False,
                       "standardize": True},
    )


@register_detector("mahalanobis", test_params=_CLASSICAL_TEST)
def mahalanobis() -> ComposedDetector:
    """Mahalanobis distance with a Ledoit-Wolf shrunk covariance of log-mel statistics."""
    return ComposedDetector(frontend="logmel", pooling="meanstd", scorer="mahalanobis")


@register_detector("mahalanobis-hf", test_params={"frontend_params": {"n_mels": 32,
                                                                     "fmin": 1500.0}})
def mahalanobis_hf() -> ComposedDetector:
    """Mahalanobis on log-mel statistics of the bands above 1.5 kHz only (64 mels).

    Leaves out the low frequencies, where a new site's background (another factory's
    machines, voices, rumble) differs most, so that a few target-domain clips suffice.
    Chosen on validation seeds 1-5 of the synthetic machines set (docs/benchmarks.md,
    "choosing on validation seeds"). Not a general default: on dcase2020-mini it is worse
    than ``mahalanobis`` (faults below 1.5 kHz are invisible to it).
    """
    return ComposedDetector(frontend="logmel", frontend_params={"fmin": 1500.0, "n_mels": 64},
                            pooling="meanstd", scorer="mahalanobis")


_AE_TEST: dict[str, Any] = {
    **_NETWORK_TEST, "frontend_params": {"n_mels": 16, "n_frames": 3},
    "encoder_params": {"hidden": 16, "n_hidden": 2, "latent_dim": 4},
}


def _dcase_ae(scorer: str) -> ComposedDetector:
    """The DCASE 2023/2024 Task 2 baseline autoencoder and its recipe, scored by ``scorer``."""
    return ComposedDetector(
        frontend="frames", encoder="ae", objective="reconstruction", pooling="mean",
        scorer=scorer,
        training={"epochs": 100, "batch_size": 256, "lr": 1e-3, "optimizer": "adam",
                  "val_fraction": 0.1},
    )


@register_detector("ae", test_params=_AE_TEST)
def ae() -> ComposedDetector:
    """DCASE Task 2 baseline autoencoder on 5 stacked log-mel frames; MSE (or -p scorer=...)."""
    return _dcase_ae("mse")


@register_detector("ae-mahalanobis", test_params=_AE_TEST)
def ae_mahalanobis() -> ComposedDetector:
    """The ``ae`` network scored by selective Mahalanobis on its residuals (shrunk variant).

    The same network and training as ``ae``; a clip's score is the smaller Mahalanobis
    distance of its mean residual to the source and the target training residuals, with
    Ledoit-Wolf shrunk covariances (``-p scorer__variant=baseline``: the official
    baseline's ``MAHALA`` score). What ``--config ae`` meant before ``ae`` became one
    detector; the reference of the benchmarks' synthetic-machine tables.
    """
    return _dcase_ae("selective_mahalanobis")


@register_detector("vae1d", test_params={
    **_NETWORK_TEST, "frontend_params": {"n_mels": 16}, "window_frames": 16,
    "score_hop": 16, "encoder_params": {"hidden": 16, "latent_dim": 4},
    "objective__n_samples": 2,
})
def vae1d() -> ComposedDetector:
    """Variational autoencoder with 1-D convolutions over log-mel windows; negative ELBO."""
    return ComposedDetector(
        frontend="logmel", encoder="vae1d", objective="vae", pooling="mean", scorer="elbo",
        window_frames=64, score_hop=64,
        training={"epochs": 50, "batch_size": 64, "lr": 1e-3, "optimizer": "adam",
                  "val_fraction": 0.1},
    )


@register_detector("unet1d-ae", test_params={
    **_NETWORK_TEST, "frontend_params": {"n_mels": 16}, "window_frames": 16,
    "score_hop": 16, "encoder__base_channels": 8,
})
def unet1d_ae() -> ComposedDetector:
    """The seed's U-Net-style 1-D conv autoencoder (called "VAE1D" there); MSE score."""
    return ComposedDetector(
        frontend="logmel", encoder="unet1d", objective="reconstruction", pooling="mean",
        scorer="mse", window_frames=64, score_hop=64,
        training={"epochs": 50, "batch_size": 64, "lr": 1e-3, "optimizer": "adam",
                  "val_fraction": 0.1},
    )


@register_detector("cnn1d", test_params=_CNN_TEST)
def cnn1d() -> ComposedDetector:
    """Wave1DCNN (Conv1d + GeM + BiGRU) on log-mel channels; auxiliary objective, k-NN score."""
    return ComposedDetector(
        frontend="logmel", encoder="cnn1d", objective="auxiliary", pooling="mean",
        scorer="knn", training=dict(_CNN_TRAINING),
    )


@register_detector("wavevision", test_params={**_CNN_TEST, "encoder__image_size": 32})
def wavevision() -> ComposedDetector:
    """WaveVisionNet (EfficientNet-style CNN + LambdaConv) on log-mel images; auxiliary, k-NN."""
    return ComposedDetector(
        frontend="logmel", encoder="wavevision", objective="auxiliary", pooling="mean",
        scorer="knn", training={**_CNN_TRAINING, "epochs": 20},
    )


@register_detector("knn-frames", test_params=_CLASSICAL_TEST)
def knn_frames() -> ComposedDetector:
    """Frame-level k-NN: each log-mel frame's distance to the nearest normal training frame.

    Frames are standardised per mel bin; a clip's score is the mean over its frames of the
    Euclidean distance to the nearest training frame (source and target banks, the smaller;
    every training frame, searched with faiss). A member of the default (``robust``).
    """
    return ComposedDetector(
        frontend="logmel", pooling="none", scorer="knn",
        scorer_params={"n_neighbors": 1, "metric": "euclidean", "standardize": True},
    )


@register_detector("ensemble", test_params={
    "members": [{"detector": "mahalanobis", "params": _CLASSICAL_TEST},
                {"detector": "knn", "params": {**_CLASSICAL_TEST, "scorer__n_neighbors": 2}}],
    "weights": None,
})
def ensemble() -> EnsembleDetector:
    """Frame-level log-mel k-NN (weight 2) and CREPE-tiny embedding k-NN (1), z-normalised.

    Needs ``soundwatch[pretrained]`` for its CREPE member; ``-p members=[...]`` chooses others.
    """
    return EnsembleDetector(members=[{"detector": "knn-frames"}, {"detector": "embedding"}],
                            weights=[2.0, 1.0])


_EMBEDDING_TEST: dict[str, Any] = {"encoder": "crepe-tiny"}


@register_detector("robust", test_params={
    "members": [{"detector": "mahalanobis", "params": _CLASSICAL_TEST},
                {"detector": "knn-frames", "params": _CLASSICAL_TEST},
                {"detector": "embedding", "params": {"score_hop": 4096}}],
})
def robust() -> EnsembleDetector:
    """The default: five detectors from four feature spaces, log-distances z-scored, averaged.

    Members (``ROBUST_MEMBERS``): log-mel statistics with Mahalanobis (the reference), the
    same above 1.5 kHz (``mahalanobis-hf``), log-mel statistics with k-NN (``knn``), log-mel
    frames with k-NN (``knn-frames``) and the pretrained CREPE-tiny embedding with k-NN
    (``embedding``; its weights ship with soundwatch). Each member's score is the log of a
    distance, z-scored against that member's own out-of-fold training scores
    (``normalize="logz"``), and the ensemble's score is their mean. Chosen on the
    robustness suite (benchmarks/robustness.py, 17 visible sets): the rule with the best
    worst case against log-mel statistics + Mahalanobis among those meeting issue 24's
    floors; those sets are not unseen data for it.
    """
    return EnsembleDetector(members=[{"detector": name} for name in ROBUST_MEMBERS],
                            combine="mean", normalize="logz")


@register_detector("embedding", test_params=_EMBEDDING_TEST)
def embedding() -> ComposedDetector:
    """Frozen pretrained encoder (CREPE tiny) frame embeddings, mean+std; domain-aware k-NN.

    Frames of 1024 samples every 1024, centred as CREPE's own framing (half a frame of
    zeros at each end: ``frontend_params.pad``). Needs ``pip install soundwatch[pretrained]``.
    ``-p encoder=crepe-full``, ``-p encoder__layer=4``, ``-p scorer=mahalanobis`` choose
    other parts.
    """
    return ComposedDetector(
        frontend="waveform", frontend_params={"sr": 16000, "pad": 512}, encoder="crepe-tiny",
        pooling="meanstd", scorer="knn", window_frames=1024, score_hop=1024,
    )


_EMBEDDING_FT_TEST: dict[str, Any] = {
    "training": {"epochs": 1, "batch_size": 8, "val_fraction": 0.0},
    "train_hop": 4096, "score_hop": 4096,
    # pitch shifting is left out: librosa's first call alone takes seconds
    "objective__anomaly_kinds": "noise,tone,impulses,burst,speed,notch",
}


@register_detector("embedding-finetuned", test_params=_EMBEDDING_FT_TEST)
def embedding_finetuned() -> ComposedDetector:
    """CREPE tiny with its top 2 blocks fine-tuned (auxiliary, sub-cluster AdaCos); k-NN.

    The classes are the clips' machine, section and attributes (with one class: normal vs.
    synthetic anomaly kinds), with mixup (alpha 0.2) and feature exchange. Needs
    ``pip install soundwatch[pretrained]``. On dcase2020-mini it is not better than the
    frozen ``embedding`` (docs/benchmarks.md).
    """
    return ComposedDetector(
        frontend="waveform", frontend_params={"sr": 16000, "pad": 512}, encoder="crepe-tiny",
        encoder_params={"finetune": 2}, objective="auxiliary",
        objective_params={"sub_clusters": 4, "mixup": 0.2, "feature_exchange": True,
                          "synthetic_repeats": 16},
        pooling="meanstd", scorer="knn", window_frames=1024, train_hop=2048, score_hop=1024,
        training={"epochs": 10, "batch_size": 64, "lr": 1e-4, "optimizer": "adam",
                  "val_fraction": 0.0},
    )


# a 2-layer BEATs of random weights: the tests exercise the composition without a download
_BEATS_TINY_CFG: dict[str, Any] = {
    "input_patch_size": 16, "embed_dim": 16, "encoder_layers": 2, "encoder_embed_dim": 32,
    "encoder_ffn_embed_dim": 32, "encoder_attention_heads": 2, "conv_pos": 8,
    "conv_pos_groups": 2, "deep_norm": True, "relative_position_embedding": True,
    "num_buckets": 32, "max_distance": 64, "gru_rel_pos": True,
}


@register_detector("beats", test_params={"encoder__random_init": _BEATS_TINY_CFG,
                                         "window_frames": 4000, "score_hop": 4000,
                                         "train_hop": 4000})
def beats() -> ComposedDetector:
    """Frozen BEATs (official checkpoint the user downloads) + GenRep-style domain-wise k-NN.

    Mean of the BEATs tokens over 2 s windows, averaged per clip; ``knn_domain`` scores
    each clip's distance to the nearest training clip of each domain, z-scored per domain
    (GenRep). Pass the checkpoint with ``-p encoder__checkpoint=PATH`` or set
    ``SOUNDWATCH_BEATS_CHECKPOINT`` (docs/detectors.md, "Encoders from checkpoints").
    """
    return ComposedDetector(
        frontend="waveform", frontend_params={"sr": 16000}, encoder="beats",
        pooling="mean", scorer="knn_domain", window_frames=32000, train_hop=32000,
        score_hop=32000,
    )
