"""ComposedDetector: front-end + (encoder + objective) + pooling + scorer, each chosen by name."""

from __future__ import annotations

import functools
import logging
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar

import numpy as np

from soundwatch.detectors.base import Detector, read_npz, resolve_labels, write_npz
from soundwatch.detectors.parts import AddedParts
from soundwatch.errors import DetectorError
from soundwatch.training.context import RunContext

if TYPE_CHECKING:
    from typing import Self

    from soundwatch.datasets.clip import Clip
    from soundwatch.detectors.graph import ScoringGraph
    from soundwatch.detectors.parts import Part

__all__ = ["ComposedDetector", "split_clips"]

log = logging.getLogger(__name__)

WEIGHTS_FILE = "weights.pt"
STATE_FILE = "state.npz"
OOF_FOLDS = 5


SCORE_BATCH = 256
"""Clips whose features :meth:`ComposedDetector.score` computes and scores at a time."""


def _fitted(scorer: Any) -> bool:
    """Whether a scorer has learned state (attributes ending with ``_``)."""
    return any(k.endswith("_") and not k.startswith("_") for k in vars(scorer))


def split_clips(n: int, val_fraction: float, seed: int) -> tuple[list[int], list[int]]:
    """Hold out whole clips for validation (``val_fraction`` of them, seeded).

    With fewer than 10 clips, returns ``(all, [])``: the engine then splits items.
    """
    n_val = int(round(n * val_fraction))
    if n < 10 or n_val < 1:
        return list(range(n)), []
    order = np.random.default_rng(seed).permutation(n)
    return sorted(order[n_val:].tolist()), sorted(order[:n_val].tolist())


@functools.lru_cache(maxsize=32)
def _shared_frontend(name: str, params_json: str, device: str) -> Any:
    """One front-end module per (name, params, device) for the whole process.

    Building one (a mel or CQT kernel) per call is slow, and a detector keeps no cache so
    that scoring leaves it unchanged. Front-ends hold no state that ``forward`` changes.
    """
    import json

    from soundwatch.features import create_frontend

    fe = create_frontend(name, **json.loads(params_json))
    fe.eval()
    return fe.to(device)


class ComposedDetector(AddedParts, Detector):
    """A detector composed of registered parts, each chosen by name with its own params.

    Data flow: clips -> front-end features (cached) -> [encoder network trained by an
    objective] -> a *view* per clip (``vectors``: front-end frames or network embeddings;
    ``residual``, ``probability``, ``elbo`` when the objective offers them) ->
    pooling (``vectors`` only) -> scorer. Without an encoder it is a classical detector
    (front-end + pooling + scorer). Any scorer whose ``requires`` is among the views
    works with any encoder.

    ``fit`` also computes out-of-fold training scores (``train_scores_``: the scorer is
    refitted ``5`` times, each fold scored by a scorer that never saw it) and the default
    decision policy's threshold on them (``threshold_``, ``far:0.01``: see
    :mod:`soundwatch.decisions`), so decisions mean the same for every detector.

    Args:
        frontend: Front-end name (``soundwatch components``).
        frontend_params: Its parameters.
        encoder: Encoder (network) name; ``None`` for a classical detector.
        encoder_params: Its parameters.
        objective: Training objective name (``None`` for no network or a frozen encoder).
        objective_params: Its parameters.
        pooling: Pooling of the ``vectors`` view per clip (``"none"``: score every item).
        pooling_params: Its parameters.
        scorer: Scorer name.
        scorer_params: Its parameters (``seed`` defaults to the detector's).
        training: Training hyper-parameters (:class:`~soundwatch.training.spec.TrainSpec`
            fields: epochs, batch_size, lr, optimizer, ...).
        parts: Added part kinds (:func:`~soundwatch.detectors.parts.register_part`):
            kind -> ``{"name": ..., "params": {...}}``, run at their hooks in this order.
        window_frames: Window length of windowed encoders (``None``: the shortest
            training clip), capped at the shortest training clip.
        train_hop: Hop of the training windows (``None``: half a window).
        score_hop: Hop of the scoring windows (``None``: half a window).
        seed: Seed of initialisation, splits, shuffling, synthetic anomalies, scorers.
    """

    _nested: ClassVar[dict[str, str]] = {
        "frontend": "frontend_params",
        "encoder": "encoder_params",
        "objective": "objective_params",
        "pooling": "pooling_params",
        "scorer": "scorer_params",
        "training": "training",
    }

    def __init__(
        self,
        *,
        frontend: str = "logmel",
        frontend_params: dict[str, Any] | None = None,
        encoder: str | None = None,
        encoder_params: dict[str, Any] | None = None,
        objective: str | None = None,
        objective_params: dict[str, Any] | None = None,
        pooling: str = "meanstd",
        pooling_params: dict[str, Any] | None = None,
        scorer: str = "mahalanobis",
        scorer_params: dict[str, Any] | None = None,
        training: dict[str, Any] | None = None,
        parts: dict[str, Any] | None = None,
        window_frames: int | None = None,
        train_hop: int | None = None,
        score_hop: int | None = None,
        seed: int = 0,
    ) -> None:
        self.frontend = frontend
        self.frontend_params = frontend_params
        self.encoder = encoder
        self.encoder_params = encoder_params
        self.objective = objective
        self.objective_params = objective_params
        self.pooling = pooling
        self.pooling_params = pooling_params
        self.scorer = scorer
        self.scorer_params = scorer_params
        self.training = training
        self.parts = parts
        self.window_frames = window_frames
        self.train_hop = train_hop
        self.score_hop = score_hop
        self.seed = seed

    # ----------------------------------------------------------------- parts
    def part(self, kind: str) -> Part:
        """The typed part ``kind`` (``frontend``, ``encoder``, ..., ``training``, an added kind).

        Built from the saved form (the choice and its params dict) each time it is asked
        for: it is cheap, and the detector keeps no part objects besides its params.
        """
        from soundwatch.detectors.parts import PARTS

        if kind not in self._nested:
            return self.added_part(kind)
        if kind == "training":
            name = "train" if self.encoder is not None and self.objective is not None else None
        else:
            name = getattr(self, kind)
        return PARTS[kind](name, dict(getattr(self, self._nested[kind]) or {}),
                           f"{self.name}.{kind}")

    def _accepted(self, part: str) -> set[str]:
        return self.part(part).accepted()

    def _on_part_change(self, part: str, given: Any) -> None:
        setattr(self, self._nested[part], None)
        if part == "objective" and self.objective is not None and "scorer" not in given:
            self.scorer = self.part("objective").entry().default_scorer
            self.scorer_params = None

    def _make_objective(self) -> Any:
        return self.part("objective").create()

    def _make_scorer(self) -> Any:
        defaults: dict[str, Any] = {"seed": self.seed}
        n_mels = getattr(self.part("frontend").config(), "n_mels", None)
        if n_mels:  # a block is one frame of the front-end's mel bins
            defaults["block_size"] = int(n_mels)
        return self.part("scorer").create(**defaults)

    def train_spec(self) -> Any:
        """The typed training spec (:class:`~soundwatch.training.spec.TrainSpec`)."""
        return self.part("training").spec()

    @property
    def supervised(self) -> bool:  # noqa: D102
        return self.part("objective").supervised

    def views(self) -> tuple[str, ...]:
        """The views this composition offers to its scorer."""
        if self.encoder is None or self.objective is None:
            return ("vectors",)
        return ("vectors", *self.part("objective").views)

    def validate_params(self) -> None:
        """Check every part (it checks itself), then that the parts fit together.

        Raises:
            DetectorError: The first problem, naming the part and parameter.
        """
        for name in ("window_frames", "train_hop", "score_hop"):
            value = getattr(self, name)
            if value is not None and (isinstance(value, bool) or not isinstance(value, int)
                                      or value < 1):
                raise DetectorError(f"{self.name}.{name}", f"must be a whole number >= 1 or "
                                    f"null, got {value!r}")
        if isinstance(self.seed, bool) or not isinstance(self.seed, int):
            raise DetectorError(f"{self.name}.seed", f"must be a whole number, got "
                                f"{self.seed!r}")
        for dict_name in self._nested.values():
            value = getattr(self, dict_name)
            if value is not None and not isinstance(value, dict):
                raise DetectorError(f"{self.name}.{dict_name}", "must be a mapping of "
                                    f"parameters, got {value!r}")
        frontend, encoder, objective = (self.part(k) for k in ("frontend", "encoder",
                                                                "objective"))
        frontend.check()
        self.part("training").check()
        scorer = self._make_scorer()
        self.part("pooling").check()
        if encoder.name is None:
            if objective.name is not None:
                raise DetectorError(f"{self.name}.objective", "needs an encoder")
        else:
            self._check_encoder(frontend, encoder, objective)
        views = ("vectors", *objective.views)
        if scorer.requires not in views:
            raise DetectorError(f"{self.name}.scorer", f"{self.scorer} needs the "
                                f"{scorer.requires!r} view; this composition offers "
                                f"{', '.join(views)}")
        self.check_added()

    def _check_encoder(self, frontend: Part, encoder: Any, objective: Any) -> None:
        """The rules between the encoder and the front-end, the windows and the objective."""
        encoder.check()
        wanted = "rows" if frontend.layout == "rows" else "windows"
        if encoder.layout != wanted:
            raise DetectorError(f"{self.name}.encoder", f"{self.encoder} reads "
                                f"{encoder.layout}, but front-end {self.frontend} gives "
                                f"{frontend.layout}")
        multiple = encoder.time_multiple()
        if self.window_frames is not None and self.window_frames % multiple:
            raise DetectorError(f"{self.name}.window_frames", f"must be a multiple of "
                                f"{multiple} for encoder {self.encoder}")
        trains = encoder.trains()
        if trains and objective.name is None:
            raise DetectorError(f"{self.name}.objective", f"encoder {self.encoder} must be "
                                "trained: choose an objective")
        if not trains and objective.name is not None:
            raise DetectorError(f"{self.name}.objective", f"encoder {self.encoder} is "
                                "frozen (pretrained): objective must be null")
        if objective.name is not None and encoder.layout not in objective.create().layouts:
            raise DetectorError(f"{self.name}.objective", f"{self.objective} cannot "
                                f"train a {encoder.layout} encoder")

    # ----------------------------------------------------------------- features
    def make_frontend(self, device: str = "cpu") -> Any:
        """The front-end these parameters describe, on ``device`` (shared, never mutated)."""
        import json

        fe = _shared_frontend(self.frontend, json.dumps(self.frontend_params or {},
                                                        sort_keys=True, default=str), device)
        noise = getattr(self, "noise_reference_", None)  # fitted noise-only reference
        return fe if noise is None else fe.with_noise(noise)

    def _device(self, ctx: RunContext) -> str:
        if self.encoder is None:
            return "cpu"
        from soundwatch.training.fit import resolve_device

        return resolve_device(ctx.device)

    def clip_features(self, clips: Sequence[Clip], context: RunContext | None = None
                      ) -> list[np.ndarray]:
        """Front-end features of each clip (read-only memmaps with a cache folder)."""
        from soundwatch.features import FeatureCache, extract

        ctx = context or RunContext()
        fe = self.make_frontend(self._device(ctx))
        cache = FeatureCache(Path(ctx.cache_dir)) if ctx.cache_dir else None
        return extract(list(clips), fe, cache=cache, sr=fe.sr, channel=ctx.channel,
                       progress=ctx.progress)

    def signal_features(self, signals: Sequence[np.ndarray], sr: int,
                        context: RunContext | None = None) -> list[np.ndarray]:
        """Features of in-memory waveforms (resampled to the front-end's rate; no cache)."""
        from soundwatch.audio import resample
        from soundwatch.features import featurize_signal

        fe = self.make_frontend(self._device(context or RunContext()))
        out = []
        channel = (context or RunContext()).channel
        for signal in signals:
            if hasattr(fe, "signal_input"):  # a noise-aware option: its channels
                out.append(featurize_signal(fe.signal_input(signal, sr, channel), fe))
                continue
            x = np.asarray(signal, dtype=np.float32).reshape(-1)
            if sr != fe.sr:
                x = resample(x, sr, fe.sr).astype(np.float32)
            out.append(featurize_signal(x, fe))
        return out

    def _layout(self) -> str:
        from soundwatch.features.frontends import frontend_layout

        return frontend_layout(self.frontend)

    def _arrays(self, feats: list[np.ndarray]) -> list[np.ndarray]:
        """Features in the encoder's input layout (rows or ``[C, T]``)."""
        from soundwatch.detectors.graph import feature_channels, feature_rows

        layout = self._layout()
        if layout == "rows":  # the rows and channels the scoring graph reads
            return [feature_rows(np.asarray(f)[None], layout)[0].astype(np.float32, copy=False)
                    for f in feats]
        return [feature_channels(np.asarray(f, dtype=np.float32)[None])[0] for f in feats]

    # ----------------------------------------------------------------- network
    def _build_model(self, spec: dict[str, Any]) -> Any:
        import torch

        from soundwatch.detectors.encoders import ENCODERS, InputSpec

        torch.manual_seed(int(self.seed))
        input_spec = InputSpec(spec["layout"], int(spec["channels"]), spec.get("window"),
                               int(spec.get("num_outputs", 1)))
        model = ENCODERS.create(self.encoder, spec=input_spec, **(self.encoder_params or {}))
        if self.objective is not None:
            self._make_objective().attach_head(model, spec)
        return model

    def _fit_network(self, feats: list[np.ndarray], clips: list[Clip],
                     labels: np.ndarray | None, ctx: RunContext) -> None:
        entry = self.part("encoder")
        arrays = self._arrays(feats)
        layout = entry.layout
        if layout == "rows":
            if sum(len(a) for a in arrays) < 2:
                raise DetectorError(self.name, "too few feature vectors to train on "
                                    "(clips too short?)")
            window = None
        else:
            channels = int(arrays[0].shape[0])
            if any(a.shape[0] != channels for a in arrays):
                raise DetectorError(self.name, "clips give features with different numbers "
                                    "of bins")
            shortest = min(a.shape[-1] for a in arrays)
            multiple = entry.time_multiple()
            wanted = self.window_frames or shortest
            window = min(wanted, shortest) // multiple * multiple
            if window < multiple:
                window = wanted
        objective = self._make_objective() if entry.trains() else None
        plan = objective.plan(clips, labels, self.make_frontend().sr) if objective else None
        spec = {
            "layout": layout,
            "channels": int(arrays[0].shape[-1] if layout == "rows" else arrays[0].shape[0]),
            "window": window,
            "num_outputs": plan.num_outputs if plan else 1,
            "class_names": plan.class_names if plan else [],
        }
        model = self._build_model(spec)
        if layout == "windows":
            normal = arrays
            if plan is not None and plan.targets is not None and objective.supervised:
                normal = [a for a, t in zip(arrays, plan.targets, strict=True) if t == 0]
            total = sum(a.shape[1] for a in normal)
            mean = sum(a.sum(axis=1, dtype=np.float64) for a in normal) / total
            var = sum(((a - mean[:, None]) ** 2).sum(axis=1, dtype=np.float64)
                      for a in normal) / total
            model.set_stats(mean, np.sqrt(var))
        self.network_spec_ = spec
        self.network_ = model
        self.history_ = None
        if objective is None:
            model.eval()
            return
        from soundwatch.detectors.objectives import TrainInput
        from soundwatch.training.fit import fit_network

        train_spec = self.train_spec()
        train_idx, val_idx = split_clips(len(arrays), train_spec.val_fraction, self.seed)
        hop = max(1, self.train_hop or (window // 2 if window else 1))
        data = TrainInput(arrays=arrays, clips=clips, plan=plan, train_idx=train_idx,
                          val_idx=val_idx, window=window, hop=hop,
                          frontend=self.make_frontend(), seed=int(self.seed),
                          channel=ctx.channel)
        train_data, val_data, overrides = objective.datasets(data)
        log_csv = Path(ctx.log_dir) / "train_log.csv" if ctx.log_dir else None
        network, history = fit_network(model, train_data, objective.loss(), train_spec, ctx,
                                       val_data=val_data, seed=int(self.seed),
                                       log_csv=log_csv, **overrides)
        self.network_ = network
        summary = history.summary()
        for key in ("wall_s", "device", "precision"):  # run facts, not learned state
            summary.pop(key, None)
        self.history_ = summary

    def scoring_graph(self, view: str | None = None, context: RunContext | None = None
                      ) -> ScoringGraph:
        """The torch graph this fitted detector scores with (and the ONNX export traces).

        Front-end -> score windows -> network view -> pooling: see
        :class:`~soundwatch.detectors.graph.ScoringGraph`.

        Args:
            view: One of :meth:`views` (default: what the scorer requires).
            context: Run settings (the device).
        """
        from soundwatch.detectors.graph import ScoringGraph

        device = self._device(context or RunContext())
        return ScoringGraph.from_detector(self, view, device)

    def view_items(self, feats: list[np.ndarray], view: str | None = None,
                   context: RunContext | None = None) -> list[np.ndarray]:
        """Per clip, the items of a view (``[n_items, d]`` float64), before pooling.

        Args:
            feats: Front-end features of each clip.
            view: One of :meth:`views` (default: what the scorer requires).
            context: Run settings (the device).
        """
        graph = self.scoring_graph(view, context)
        return [graph.clip_view(f) for f in feats]

    # ----------------------------------------------------------------- scoring
    def _scorer_inputs(self, feats: list[np.ndarray], context: RunContext | None
                       ) -> list[np.ndarray]:
        graph = self.scoring_graph(None, context)
        if graph.model is None and graph.pooling[0] == "none":
            # the front-end's float32 rows as views: scorers convert while they concatenate
            # (float64 copies of every frame doubled a frame-level k-NN's memory)
            return [graph.rows(np.asarray(f)[None])[0] for f in feats]
        # clip by clip: the unpooled items of every clip are never all held at once
        return [graph.pool(graph.clip_view(f)) for f in feats]

    def _fit_scorer(self, items: list[np.ndarray], domains: list[str | None]) -> None:
        """Fit the scorer on all clips, its out-of-fold scores and the threshold on them.

        The added parts run at their hooks (``items`` before the scorer, ``scores`` on
        its out-of-fold scores). The folds run first and the full scorer is fitted after
        them, so that a fold's scorer and the full one (two k-NN banks of nearly every
        frame) never coexist.
        """
        from soundwatch.decisions import Decider

        self.parts_ = {}
        items = self.fit_added("items", items, domains)
        scorer = self._make_scorer()
        oof = self._oof_scores(items, domains, scorer) if scorer.needs_fit else None
        scorer.fit(items, domains)
        if oof is None:
            oof = self._oof_scores(items, domains, scorer)
        self.scorer_ = scorer
        self.train_scores_ = self.fit_added("scores", oof, domains)
        self.threshold_ = Decider.from_training_scores(self.train_scores_).threshold

    def _oof_scores(self, items: list[np.ndarray], domains: list[str | None],
                    template: Any = None) -> np.ndarray | None:
        """Out-of-fold scores: each fold's clips scored by a scorer fitted on the others.

        ``None`` when they are impossible (the caller then scores the clips in-sample with
        the fitted scorer, ``self.scorer_`` when ``template`` is not given).
        """
        template = self.scorer_ if template is None else template
        n = len(items)
        k = min(OOF_FOLDS, n)
        if not template.needs_fit:
            return template.score(items)
        if k < 2:
            log.warning("%s: one training clip; its training score is in-sample", self.name)
            return template.score(items) if _fitted(template) else None
        fold = np.random.default_rng(self.seed).permutation(n) % k
        out = np.empty(n)
        for f in range(k):
            held = np.flatnonzero(fold == f)
            kept = np.flatnonzero(fold != f)
            scorer = template.unfitted_copy()
            try:
                scorer.fit([items[i] for i in kept], [domains[i] for i in kept])
            except (ValueError, DetectorError) as exc:
                log.warning("%s: out-of-fold training scores impossible (%s); using in-sample "
                            "scores, a threshold fitted on them is optimistic", self.name, exc)
                return template.score(items) if _fitted(template) else None
            out[held] = scorer.score([items[i] for i in held])
            del scorer
        return out

    def fit(self, clips: Sequence[Clip], labels: np.ndarray | None = None,
            context: RunContext | None = None) -> Self:
        """Learn from training clips (see :meth:`Detector.fit`)."""
        self.validate_params()
        ctx = context or RunContext()
        clips = list(clips)
        if not clips:
            raise DetectorError(self.name, "no training clips")
        for name in [k for k in vars(self) if k.endswith("_") and not k.startswith("_")]:
            delattr(self, name)  # refitting starts from nothing (fit is idempotent)
        from soundwatch.features.noise_aware import noise_training

        noisy = noise_training(self.frontend_params, clips, self.make_frontend().sr)
        clips = noisy.clips  # without the noise-only clips
        if noisy.reference is not None:
            self.noise_reference_ = noisy.reference
        y = resolve_labels(self.name, clips, labels) if self.supervised else None
        feats = self.clip_features(clips, ctx)
        extra, of = noisy.augmented(self.make_frontend(self._device(ctx)), ctx.channel,
                                    int(self.seed))
        if self.encoder is not None:
            self._fit_network(feats + extra, clips + [clips[i] for i in of],
                              None if y is None else np.concatenate([y, y[of]]), ctx)
        normal = [i for i in range(len(clips)) if y is None or y[i] == 0]
        items = self._scorer_inputs([feats[i] for i in normal], ctx)
        del feats
        domains = [clips[i].domain for i in normal]
        self._fit_scorer(items, domains)
        if extra:  # noisy copies join the fitted scorer; out-of-fold scores are without them
            keep = [k for k, i in enumerate(of) if y is None or y[i] == 0]
            more = self._scorer_inputs([extra[k] for k in keep], ctx)
            self.scorer_.fit(self.apply_added("items", items) + self.apply_added("items", more),
                             domains + [clips[of[k]].domain for k in keep])
        return self

    def refit_scorer(self, clips: Sequence[Clip], context: RunContext | None = None,
                     **scorer_change: Any) -> Self:
        """Refit only the scorer (and threshold) of a fitted detector, keeping the network.

        Args:
            clips: The (normal) training clips.
            context: Run settings.
            **scorer_change: New ``scorer``, ``scorer_params``, ``pooling``... (as for
                :meth:`set_params`; network parts cannot change).

        Raises:
            DetectorError: A change to a part that would need retraining.
        """
        self._check_fitted()
        frozen = ("frontend", "frontend_params", "encoder", "encoder_params", "objective",
                  "objective_params", "training", "window_frames", "train_hop")
        network_parts = ("frontend", "encoder", "objective", "training")
        # a bare key (``epochs``) belongs to the one part that has it
        bad = [k for k in scorer_change
               if k in frozen or k.split("__")[0] in network_parts
               or ("__" not in k and k not in self._param_names()
                   and self._route(k) in network_parts)]
        if bad:
            raise DetectorError(self.name, f"{', '.join(bad)} changes the network: retrain")
        self.set_params(**scorer_change)
        clips = list(clips)
        feats = self.clip_features(clips, context)
        items = self._scorer_inputs(feats, context)
        del feats
        self._fit_scorer(items, [c.domain for c in clips])
        return self

    def _checked(self, scores: np.ndarray, n: int) -> np.ndarray:
        scores = np.asarray(scores, dtype=np.float64).reshape(-1)
        if len(scores) != n:
            raise DetectorError(self.name, f"internal error: {len(scores)} scores for {n} inputs")
        bad = int(np.sum(~np.isfinite(scores)))
        if bad:
            log.warning("%s: %d of %d scores are not finite", self.name, bad, n)
        return scores

    def score_features(self, feats: list[np.ndarray], context: RunContext | None = None
                       ) -> np.ndarray:
        """Scores of clips given their front-end features."""
        self._check_fitted()
        items = self.apply_added("items", self._scorer_inputs(feats, context))
        return self._checked(self.apply_added("scores", self.scorer_.score(items)), len(feats))

    def score(self, clips: Sequence[Clip], context: RunContext | None = None) -> np.ndarray:
        """Anomaly score per clip (float64, higher = more anomalous)."""
        self._check_fitted()
        clips = list(clips)
        if not clips:
            return np.zeros(0, dtype=np.float64)
        # a batch of clips at a time: features (a waveform front-end's are 640 kB per 10 s
        # clip) are never all held at once
        return np.concatenate([
            self.score_features(self.clip_features(clips[i : i + SCORE_BATCH], context), context)
            for i in range(0, len(clips), SCORE_BATCH)])

    def score_signals(self, signals: Sequence[np.ndarray], sr: int,
                      context: RunContext | None = None) -> np.ndarray:
        """Anomaly score per in-memory waveform (float64, higher = more anomalous)."""
        self._check_fitted()
        if len(signals) == 0:
            return np.zeros(0, dtype=np.float64)
        return self.score_features(self.signal_features(signals, sr, context), context)

    def embed(self, clips: Sequence[Clip], context: RunContext | None = None) -> np.ndarray:
        """The pooled ``vectors`` view ``[N, D]`` of each clip (embedding or statistics)."""
        self._check_fitted()
        graph = self.scoring_graph("vectors", context)
        feats = self.clip_features(list(clips), context)
        return np.concatenate([graph.pool(graph.clip_view(f)) for f in feats])

    # ----------------------------------------------------------------- persistence
    def _save_state(self, directory: Path) -> dict[str, Any]:
        arrays = {f"scorer/{k}": v for k, v in self.scorer_.state().items()}
        arrays.update(self.added_state())
        arrays["train_scores"] = np.asarray(self.train_scores_, dtype=np.float64)
        if getattr(self, "noise_reference_", None) is not None:
            arrays["noise_reference"] = np.asarray(self.noise_reference_, dtype=np.float32)
        write_npz(directory / STATE_FILE, arrays)
        meta: dict[str, Any] = {"threshold": float(self.threshold_)}
        if self.encoder is not None:
            from soundwatch.detectors.networks import save_weights

            save_weights(directory / WEIGHTS_FILE, self.network_.state_dict())
            meta["network_spec"] = self.network_spec_
            meta["history"] = self.history_
        return meta

    def _load_state(self, directory: Path, meta: dict[str, Any]) -> None:
        arrays = read_npz(directory / STATE_FILE)
        try:
            scorer_arrays = {k[len("scorer/"):]: v for k, v in arrays.items()
                             if k.startswith("scorer/")}
            self.scorer_ = self._make_scorer().load_state(scorer_arrays)
            self.train_scores_ = arrays["train_scores"]
            if "noise_reference" in arrays:
                self.noise_reference_ = arrays["noise_reference"]
            self.threshold_ = float(meta["threshold"])
            self.load_added(arrays, directory / STATE_FILE)
        except (KeyError, TypeError, ValueError) as exc:
            raise DetectorError(directory / STATE_FILE, f"incomplete detector state "
                                f"(missing {exc})") from exc
        if self.encoder is None:
            return
        from soundwatch.detectors.networks import load_weights

        spec = meta.get("network_spec")
        if not isinstance(spec, dict):
            raise DetectorError(directory / "config.json", "no network_spec")
        model = self._build_model(spec)
        state = load_weights(directory / WEIGHTS_FILE)
        try:
            model.load_state_dict(state)
        except RuntimeError as exc:
            first = str(exc).splitlines()[0]
            raise DetectorError(directory / WEIGHTS_FILE, f"weights do not fit: {first}"
                                ) from exc
        model.eval()
        self.network_spec_ = spec
        self.network_ = model
        self.history_ = meta.get("history")
