"""Dataset layouts: find the clips of a dataset folder, tell what each is, summarise them."""

from soundwatch.datasets.clip import ANOMALY, NORMAL, Clip
from soundwatch.datasets.discovery import LAYOUTS, Discovery, classify, discover, scan
from soundwatch.datasets.metadata import GroundTruth, read_attribute_csv, read_ground_truth
from soundwatch.datasets.names import (
    parse_attribute_tokens,
    parse_dcase2020_eval_name,
    parse_dcase2020_name,
    parse_dcase_dev_name,
    parse_dcase_eval_name,
    parse_labelled_path,
    parse_mimii_path,
    parse_section_name,
    parse_snr_folder,
)
from soundwatch.datasets.recordings import ANY_LAYOUT, collect_recordings, find_audio_files
from soundwatch.datasets.split import assign_split
from soundwatch.datasets.summary import DatasetReport, DatasetSummary, inspect_dataset, summary

__all__ = [
    "ANOMALY",
    "ANY_LAYOUT",
    "LAYOUTS",
    "NORMAL",
    "Clip",
    "DatasetReport",
    "DatasetSummary",
    "Discovery",
    "GroundTruth",
    "assign_split",
    "classify",
    "collect_recordings",
    "discover",
    "find_audio_files",
    "inspect_dataset",
    "parse_attribute_tokens",
    "parse_dcase2020_eval_name",
    "parse_dcase2020_name",
    "parse_dcase_dev_name",
    "parse_dcase_eval_name",
    "parse_labelled_path",
    "parse_mimii_path",
    "parse_section_name",
    "parse_snr_folder",
    "read_attribute_csv",
    "read_ground_truth",
    "scan",
    "summary",
]
