"""Export trained detectors (and front-ends) to ONNX plus plain arrays for soundwatch.runtime.

Importing this package is light; the functions import torch and onnx where they run.
"""
