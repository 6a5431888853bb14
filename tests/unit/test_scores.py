"""The scores table: building, CSV round trip, validation, DCASE score/decision files."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from soundwatch.datasets.clip import Clip
from soundwatch.errors import EvaluationError
from soundwatch.scores import (
    SCORE_COLUMNS,
    dcase_file_stem,
    make_scores_table,
    read_scores_table,
    write_dcase_decisions,
    write_dcase_scores,
    write_scores_table,
)


def _clips() -> list[Clip]:
    return [
        Clip(Path("/d/fan/test/section_00_source_test_normal_0000.wav"), "fan", "test", 0, "00",
             "source"),
        Clip(Path("/d/fan/test/section_00_target_test_anomaly_0001.wav"), "fan", "test", 1, "00",
             "target"),
        Clip(Path("/d/fan/test/section_01_0002.wav"), "fan", "test", None, "01", None),
        Clip(Path("/d/pump/test/section_00_0003.wav"), "pump", "test", 0, "00", "source",
             machine_id="id_00", attributes={"vel": "8"}),
    ]


SCORES = [0.1, 2.5, 1.0 / 3.0, -7.25]


def test_make_scores_table_columns_and_types():
    df = make_scores_table(_clips(), SCORES)
    assert list(df.columns[: len(SCORE_COLUMNS)]) == SCORE_COLUMNS
    assert df["section"].tolist() == ["00", "00", "01", "00"]
    assert df["label"].tolist()[:2] == [0.0, 1.0] and np.isnan(df["label"][2])
    assert df["score"].dtype == np.float64
    assert "attr_vel" in df.columns


def test_make_scores_table_rejects_bad_input():
    with pytest.raises(EvaluationError, match="3 scores for 4 clips"):
        make_scores_table(_clips(), SCORES[:3])
    with pytest.raises(EvaluationError, match="NaN"):
        make_scores_table(_clips(), [0.0, np.nan, 1.0, 2.0])


def test_csv_round_trip_keeps_sections_labels_and_exact_scores(tmp_path):
    df = make_scores_table(_clips(), SCORES)
    path = write_scores_table(df, tmp_path / "scores.csv")
    text = path.read_text().splitlines()
    assert text[0].startswith("path,machine,section,domain,split,label,score")
    back = read_scores_table(path)
    assert back["section"].tolist() == ["00", "00", "01", "00"]
    assert back["score"].tolist() == SCORES  # exact, not rounded
    assert back["label"].isna().tolist() == [False, False, True, False]
    assert back["domain"].isna().tolist() == [False, False, True, False]


def test_read_errors(tmp_path):
    with pytest.raises(EvaluationError, match="not found"):
        read_scores_table(tmp_path / "none.csv")
    (tmp_path / "bad.csv").write_text("path,machine,score\na.wav,fan,1\n")
    with pytest.raises(EvaluationError, match="missing column"):
        read_scores_table(tmp_path / "bad.csv")
    (tmp_path / "nan.csv").write_text(
        "path,machine,section,domain,split,label,score\na.wav,fan,00,,test,0,\n")
    with pytest.raises(EvaluationError, match="score"):
        read_scores_table(tmp_path / "nan.csv")
    (tmp_path / "label.csv").write_text(
        "path,machine,section,domain,split,label,score\na.wav,fan,00,,test,3,1.0\n")
    with pytest.raises(EvaluationError, match="label"):
        read_scores_table(tmp_path / "label.csv")


def test_dcase_score_files_exact_format(tmp_path):
    df = make_scores_table(_clips(), SCORES)
    paths = write_dcase_scores(df, tmp_path)
    assert sorted(p.name for p in paths) == [
        "anomaly_score_fan_section_00_test.csv",
        "anomaly_score_fan_section_01_test.csv",
        "anomaly_score_pump_section_00_test.csv",
    ]
    assert (tmp_path / "anomaly_score_fan_section_00_test.csv").read_text() == (
        "section_00_source_test_normal_0000.wav,0.1\n"
        "section_00_target_test_anomaly_0001.wav,2.5\n"
    )
    line = (tmp_path / "anomaly_score_fan_section_01_test.csv").read_text()
    name, value = line.strip().split(",")
    assert name == "section_01_0002.wav" and float(value) == 1.0 / 3.0


def test_dcase_decision_files_exact_format(tmp_path):
    df = make_scores_table(_clips(), SCORES)
    with pytest.raises(EvaluationError, match="decision"):
        write_dcase_decisions(df, tmp_path)
    df["decision"] = [0, 1, 1, 0]
    write_dcase_decisions(df, tmp_path)
    assert (tmp_path / "decision_result_fan_section_00_test.csv").read_text() == (
        "section_00_source_test_normal_0000.wav,0\n"
        "section_00_target_test_anomaly_0001.wav,1\n"
    )
    assert (tmp_path / "decision_result_pump_section_00_test.csv").read_text() == (
        "section_00_0003.wav,0\n")


def test_dcase_file_stem():
    assert dcase_file_stem("fan", "0") == "fan_section_00"
    assert dcase_file_stem("ToyCar", None) == "ToyCar_section_00"
    assert dcase_file_stem("a/b", "03") == "a_b_section_03"


def test_empty_table_round_trip(tmp_path):
    df = make_scores_table([], [])
    assert list(df.columns) == SCORE_COLUMNS and df.empty
    write_scores_table(df, tmp_path / "e.csv")
    assert read_scores_table(tmp_path / "e.csv").empty
    assert write_dcase_scores(pd.DataFrame(columns=SCORE_COLUMNS), tmp_path) == []


# ------------------------------------------------------------- decisions, modes, 2020 names
def _decided_table():
    import pandas as pd

    from soundwatch.scores import SCORE_COLUMNS

    rows = [("/d/fan/test/a.wav", "fan", 1.0), ("/d/fan/test/b.wav", "fan", 5.0),
            ("/d/pump/test/c.wav", "pump", 2.0)]
    return pd.DataFrame([{"path": p, "machine": m, "section": "00", "domain": "source",
                          "split": "test", "label": float("nan"), "score": s}
                         for p, m, s in rows], columns=SCORE_COLUMNS)


def test_add_decisions_uses_each_machines_decider(tmp_path):
    import numpy as np

    from soundwatch.decisions import Decider
    from soundwatch.scores import add_decisions, read_scores_table, write_scores_table

    deciders = {"fan": Decider(2.0, np.array([0.0, 1.0, 2.0, 3.0]))}
    out = add_decisions(_decided_table(), deciders)
    assert list(out.columns[7:10]) == ["threshold", "decision", "percentile"]
    assert out["decision"].tolist() == [0, 1, 0]
    assert out["threshold"].tolist()[:2] == [2.0, 2.0] and np.isnan(out["threshold"][2])
    assert out["percentile"].tolist()[:2] == [50.0, 100.0] and np.isnan(out["percentile"][2])
    back = read_scores_table(write_scores_table(out, tmp_path / "s.csv"))
    assert back["decision"].tolist() == [0, 1, 0]
    assert back["percentile"].tolist()[:2] == [50.0, 100.0]


def test_table_mode_from_the_layout():
    from soundwatch.scores import table_mode

    t = _decided_table()
    assert table_mode(t) == "dcase2024"
    assert table_mode(t.assign(layout="dcase2020")) == "dcase2020"
    assert table_mode(t.assign(layout="mimii")) == "dcase2020"
    assert table_mode(t.assign(machine_id="id_00")) == "dcase2020"
    assert table_mode(t.assign(layout="dcase-dev")) == "dcase2024"


def test_dcase2020_file_names(tmp_path):
    from soundwatch.scores import write_dcase_decisions, write_dcase_scores

    t = _decided_table().assign(layout="dcase2020", decision=[0, 1, 0])
    names = sorted(p.name for p in write_dcase_scores(t, tmp_path))
    assert names == ["anomaly_score_fan_id_00.csv", "anomaly_score_pump_id_00.csv"]
    names = sorted(p.name for p in write_dcase_decisions(t, tmp_path))
    assert names == ["decision_result_fan_id_00.csv", "decision_result_pump_id_00.csv"]
    forced = write_dcase_scores(_decided_table(), tmp_path / "x", mode="dcase2024")
    assert forced[0].name == "anomaly_score_fan_section_00_test.csv"
