"""Train and score pipelines: the library functions behind ``soundwatch train`` and ``score``.

One module per job: :mod:`~soundwatch.pipeline.train_runs` (``train``),
:mod:`~soundwatch.pipeline.machines` (one machine type's job, its records, ``--resume``),
:mod:`~soundwatch.pipeline.refits` (``refit``), :mod:`~soundwatch.pipeline.scoring`
(``score``), :mod:`~soundwatch.pipeline.long_recording` (``score_long_recording``),
:mod:`~soundwatch.pipeline.executor` (where the per-machine work runs) and
:mod:`~soundwatch.pipeline.common` (configuration, discovery, run context).
"""

from __future__ import annotations

from soundwatch.datasets.checks import check_clips
from soundwatch.pipeline.common import (
    RUNTIME_PARAMS,
    TEST_SPLIT,
    TOP_LEVEL_PARAMS,
    TRAIN_SPLIT,
    cache_folder,
    make_detector,
    merge_table,
    resolve_config,
    run_context,
)
from soundwatch.pipeline.executor import Executor, LocalExecutor
from soundwatch.pipeline.long_recording import WindowScores, score_long_recording
from soundwatch.pipeline.machines import (
    MachineResult,
    TrainJob,
    complete_machine,
    record_machine,
    train_machine,
)
from soundwatch.pipeline.refits import refit, training_normals
from soundwatch.pipeline.scoring import score
from soundwatch.pipeline.train_runs import train

__all__ = [
    "RUNTIME_PARAMS",
    "TOP_LEVEL_PARAMS",
    "TEST_SPLIT",
    "TRAIN_SPLIT",
    "Executor",
    "LocalExecutor",
    "MachineResult",
    "TrainJob",
    "WindowScores",
    "cache_folder",
    "check_clips",
    "complete_machine",
    "make_detector",
    "merge_table",
    "record_machine",
    "refit",
    "resolve_config",
    "run_context",
    "score",
    "score_long_recording",
    "train",
    "train_machine",
    "training_normals",
]
