"""Score with an exported detector: onnxruntime, numpy and soundfile only (never torch).

Example::

    import soundwatch.runtime

    det = soundwatch.runtime.load("export/fan")
    scores = det.score(["clip1.wav", "clip2.wav"])
    det.predict(["clip1.wav"]), det.percentile(scores)
"""

from __future__ import annotations

from soundwatch.runtime.detector import ExportedDetector, ExportedEnsemble, load, machines

__all__ = ["ExportedDetector", "ExportedEnsemble", "load", "machines"]
