"""The demo's report shows, per machine type, the flagged files with their explanations."""

from __future__ import annotations

import re

import pytest

from soundwatch.demo import run_demo


@pytest.fixture(scope="module")
def demo(tmp_path_factory):
    out = tmp_path_factory.mktemp("demo")
    return run_demo(out, detectors=["mahalanobis"],
                    data_options={"machines": ["fan"], "train_source": 8,
                                  "train_target": 2, "test_per_group": 3, "seconds": 1.0},
                    params={"mahalanobis": {"frontend_params": {"n_mels": 32}}})


def test_demo_report_shows_flagged_files_with_explanations(demo):
    report = demo.reports["mahalanobis"]
    assert report.parent.parent.name == "scores", "the report sits in its scoring's folder"
    page = report.read_text()
    evaluation = demo.evaluations["mahalanobis"]
    flagged = evaluation.scores[evaluation.scores["decision"] == 1]
    assert len(flagged), "the synthetic anomalies get flagged"
    for machine in sorted(flagged["machine"].unique()):
        assert f'id="m-{machine}"' in page
    explained = list((report.parent / "explain").glob("*.png"))
    assert explained, "explanation images for flagged clips"
    section = page[page.index("<h3>Top flagged files: where they deviate</h3>"):]
    assert re.search(r'<img src="data:image/png;base64,', section)
    assert "where it deviates" in page
    # the long recording's timeline
    assert "Long recording" in page and "event(s)" in page
    assert (demo.runs["mahalanobis"] / "scores" / "monitor").is_dir()


def test_demo_rerun_resumes_without_new_scorings(demo):
    run = demo.runs["mahalanobis"]
    before = sorted(p.name for p in (run / "scores").iterdir())
    again = run_demo(demo.root, detectors=["mahalanobis"],
                     data_options={"machines": ["fan"], "train_source": 8,
                                   "train_target": 2, "test_per_group": 3, "seconds": 1.0},
                     params={"mahalanobis": {"frontend_params": {"n_mels": 32}}})
    assert sorted(p.name for p in (run / "scores").iterdir()) == before
    assert again.comparison["official_score"].tolist() == pytest.approx(
        demo.comparison["official_score"].tolist())
