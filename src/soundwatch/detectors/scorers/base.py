"""The Scorer contract: fit on a view's per-clip items with their domains, score (pure numpy)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, ClassVar

import numpy as np

from soundwatch.detectors.component import Component
from soundwatch.errors import DetectorError

if TYPE_CHECKING:
    from typing import Self

__all__ = ["AGGREGATES", "VIEWS", "RowScorer", "Scorer", "as_rows", "per_clip"]

VIEWS = ("vectors", "residual", "probability", "elbo")
"""What a scorer consumes: ``vectors`` (front-end features, or a network's embeddings),
``residual`` (input minus reconstruction), ``probability`` (a classifier's anomaly
probability), ``elbo`` (a VAE's negative ELBO)."""

AGGREGATES = ("mean", "max")
_CHUNK_ROWS = 16384
"""Rows standardised or scored at a time (bounded memory for frame-level items)."""


def as_rows(item: np.ndarray) -> np.ndarray:
    """One clip's items as a float64 2-D array ``[n, d]``."""
    x = np.asarray(item, dtype=np.float64)
    # an explicit width: reshape(0, -1) is ambiguous for a clip without items
    return x.reshape(1, -1) if x.ndim <= 1 else x.reshape(len(x), int(np.prod(x.shape[1:])))


def _rows(item: np.ndarray) -> np.ndarray:
    """:func:`as_rows` without the float64 copy (a view where the input allows)."""
    x = np.asarray(item)
    if not np.issubdtype(x.dtype, np.floating):
        x = x.astype(np.float64)
    return x.reshape(1, -1) if x.ndim <= 1 else x.reshape(len(x), int(np.prod(x.shape[1:])))


def per_clip(per_row: np.ndarray, counts: Sequence[int], how: str = "mean") -> np.ndarray:
    """Aggregate per-row scores to one score per clip (rows are contiguous, clip by clip).

    Clips without rows get NaN.
    """
    out = np.full(len(counts), np.nan)
    start = 0
    for i, n in enumerate(counts):
        if n:
            chunk = per_row[start : start + n]
            out[i] = chunk.max() if how == "max" else chunk.sum() / n
        start += n
    return out


class Scorer(Component):
    """Base of every scorer (scikit-learn style, registered with ``@register_scorer``).

    Subclasses declare their hyper-parameters as keyword-only ``__init__`` arguments
    stored unchanged, set ``requires`` (one of :data:`VIEWS`) and ``needs_fit``, and
    implement :meth:`fit`, :meth:`score`, :meth:`state` and :meth:`load_state`. Learned
    arrays live in attributes ending with ``_``. :meth:`score` uses numpy only, so an
    export can score without torch or scikit-learn.
    """

    kind: ClassVar[str] = "scorer"
    requires: ClassVar[str] = "vectors"
    needs_fit: ClassVar[bool] = True

    # ---------------------------------------------------------------- contract
    def fit(self, items: Sequence[np.ndarray], domains: Sequence[str | None]) -> Self:
        """Learn from the training clips' items (``items[i]``: ``[n_i, d]`` of clip ``i``).

        Args:
            items: Per-clip arrays of the view this scorer ``requires``.
            domains: Each clip's domain (``"source"``, ``"target"`` or ``None``).
        """
        return self

    def score(self, items: Sequence[np.ndarray]) -> np.ndarray:
        """One float64 score per clip, higher = more anomalous."""
        raise NotImplementedError

    def state(self) -> dict[str, np.ndarray]:
        """Learned arrays, to save (no pickles)."""
        return {}

    def load_state(self, arrays: dict[str, np.ndarray]) -> Self:
        """Restore what :meth:`state` returned."""
        return self



class RowScorer(Scorer):
    """A scorer of row vectors: optional subsampling and standardisation, per-row scores.

    Subclasses declare ``standardize``, ``aggregate``, ``max_rows`` and ``seed`` among their
    parameters and implement :meth:`_fit_rows`, :meth:`_score_rows`, :meth:`_state_rows`
    and :meth:`_load_rows`. Every item row is scored; a clip's score is the mean (or max,
    ``aggregate``) of its rows' scores, so a pooled clip (one row) gets its row's score.
    """

    standardize: bool
    aggregate: str
    max_rows: int
    seed: int

    row_dtype: ClassVar[type] = np.float64
    """dtype of the training rows as :meth:`_fit_rows` gets them."""
    group_domains: ClassVar[bool] = False
    """Hand :meth:`_fit_rows` the source clips' rows first, then the target clips' (k-NN
    banks: both banks are then views of one array, no copy)."""

    def validate(self) -> None:  # noqa: D102
        self._check_choice("aggregate", AGGREGATES)
        if self.max_rows is not None:
            self._check_int("max_rows")
        self._check_choice("standardize", (True, False))

    def _fit_rows(self, x: np.ndarray, domains: np.ndarray) -> None:
        raise NotImplementedError

    def _score_rows(self, x: np.ndarray) -> np.ndarray:
        raise NotImplementedError

    def _state_rows(self) -> dict[str, np.ndarray]:
        raise NotImplementedError

    def _load_rows(self, arrays: dict[str, np.ndarray]) -> None:
        raise NotImplementedError

    def fit(self, items: Sequence[np.ndarray], domains: Sequence[str | None]) -> Self:  # noqa: D102
        self.validate()
        if self.group_domains:
            order = sorted(range(len(items)), key=lambda i: domains[i] == "target")
            items, domains = [items[i] for i in order], [domains[i] for i in order]
        rows = [_rows(i) for i in items]
        counts = [len(r) for r in rows]
        row_domains = np.repeat(
            np.array(["target" if d == "target" else "source" for d in domains]), counts)
        row_clips = np.repeat(np.arange(len(rows)), counts)
        keep = None
        if self.max_rows is not None and sum(counts) > self.max_rows:
            keep = np.random.default_rng(self.seed).choice(sum(counts), self.max_rows,
                                                            replace=False)
            keep = np.sort(keep)
            row_domains, row_clips = row_domains[keep], row_clips[keep]
        if len(row_clips) == 0:
            raise DetectorError(f"scorer {self.name}", "no training vectors")
        if self.row_dtype == np.float64:
            x = np.concatenate(rows, dtype=np.float64)
            x = x[keep] if keep is not None else x
            if self.standardize:
                self.mean_ = x.mean(axis=0)
                std = x.std(axis=0)
                self.scale_ = np.where(std > 1e-12, std, 1.0)
                x -= self.mean_  # in place: the same values as (x - mean) / scale
                x /= self.scale_
        else:
            x = self._compact_rows(rows, keep)
        del rows
        self._fit_clip_rows(x, row_domains, row_clips)
        return self

    def _compact_rows(self, rows: list[np.ndarray], keep: np.ndarray | None) -> np.ndarray:
        """The (kept) rows in :attr:`row_dtype`, standardised in float64 before rounding.

        Statistics and standardisation run in float64 over chunks of rows, so only the
        final values are rounded and no float64 copy of all rows exists at any time.
        """
        n = len(keep) if keep is not None else sum(len(r) for r in rows)
        width = rows[0].shape[1]

        def chunks():
            done, buffer, size = 0, [], 0
            for r in rows:
                if keep is not None:
                    lo, hi = np.searchsorted(keep, [done, done + len(r)])
                    part, done = r[keep[lo:hi] - done], done + len(r)
                else:
                    part = r
                buffer.append(part)
                size += len(part)
                if size >= _CHUNK_ROWS:
                    yield np.concatenate(buffer, dtype=np.float64)
                    buffer, size = [], 0
            if size:
                yield np.concatenate(buffer, dtype=np.float64)

        if self.standardize:
            total = np.zeros(width)
            for part in chunks():
                total += part.sum(axis=0)
            self.mean_ = total / n
            sq = np.zeros(width)
            for part in chunks():
                sq += ((part - self.mean_) ** 2).sum(axis=0)
            std = np.sqrt(sq / n)
            self.scale_ = np.where(std > 1e-12, std, 1.0)
        x = np.empty((n, width), dtype=self.row_dtype)
        start = 0
        for part in chunks():
            x[start : start + len(part)] = self._transform(part)
            start += len(part)
        return x

    def _fit_clip_rows(self, x: np.ndarray, domains: np.ndarray, clips: np.ndarray) -> None:
        """:meth:`_fit_rows` with each row's clip index (for out-of-fold statistics)."""
        self._fit_rows(x, domains)

    def _transform(self, x: np.ndarray) -> np.ndarray:
        if self.standardize:
            return (x - self.mean_) / self.scale_
        return x

    def score(self, items: Sequence[np.ndarray]) -> np.ndarray:  # noqa: D102
        rows = [_rows(i) for i in items]
        if not rows:
            return np.zeros(0)
        counts = [len(r) for r in rows]
        per_row = np.empty(sum(counts))
        # clips in groups of about _CHUNK_ROWS rows: per-row scores, bounded memory
        start = done = 0
        while start < len(rows):
            stop, n = start, 0
            while stop < len(rows) and (n == 0 or n + counts[stop] <= _CHUNK_ROWS):
                n += counts[stop]
                stop += 1
            if n:
                x = np.concatenate(rows[start:stop], dtype=np.float64)
                per_row[done : done + n] = self._score_rows(self._transform(x))
            start, done = stop, done + n
        return per_clip(per_row, counts, self.aggregate)

    def state(self) -> dict[str, np.ndarray]:  # noqa: D102
        out = dict(self._state_rows())
        if self.standardize:
            out.update({"mean": self.mean_, "scale": self.scale_})
        return out

    def load_state(self, arrays: dict[str, np.ndarray]) -> Self:  # noqa: D102
        if self.standardize:
            self.mean_, self.scale_ = arrays["mean"], arrays["scale"]
        self._load_rows(arrays)
        return self
