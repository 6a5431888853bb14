"""benchmarks/bench_doc.py: run.py's rewrite of benchmarks.md keeps the standalone sections."""

from __future__ import annotations

import importlib.util
from pathlib import Path

BENCH_DOC = Path(__file__).resolve().parents[2] / "benchmarks" / "bench_doc.py"


def _bench_doc(doc: Path):
    spec = importlib.util.spec_from_file_location("bench_doc_under_test", BENCH_DOC)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    module.DOC = doc
    return module


def test_prose_between_standalone_sections_is_kept(tmp_path):
    doc = tmp_path / "benchmarks.md"
    doc.write_text("# Benchmarks\n\n## Pink\n\nrun.py's own numbers\n\n"
                   "# Standalone benchmark scripts\n\nrun.py's intro.\n\n"
                   "<!-- a:start -->\n## A\n1\n<!-- a:end -->\n\n"
                   "## B, heading and reading outside its markers\n\nwhat it shows\n\n"
                   "<!-- b:start -->\n2\n<!-- b:end -->\n", encoding="utf-8")
    bench_doc = _bench_doc(doc)
    kept = bench_doc.standalone_sections()
    assert kept.startswith("<!-- a:start -->") and kept.endswith("<!-- b:end -->")
    assert "## B, heading and reading outside its markers\n\nwhat it shows" in kept
    assert "run.py's intro" not in kept and "own numbers" not in kept
    bench_doc.write_section("b", "3", doc)
    assert "what it shows" in bench_doc.standalone_sections()
    assert "<!-- b:start -->\n3\n<!-- b:end -->" in doc.read_text(encoding="utf-8")


def test_before_run_py_wrote_its_heading_the_marker_sections_alone(tmp_path):
    doc = tmp_path / "benchmarks.md"
    doc.write_text("# Benchmarks\n\nintro\n\n<!-- a:start -->\n1\n<!-- a:end -->\n",
                   encoding="utf-8")
    assert _bench_doc(doc).standalone_sections() == "<!-- a:start -->\n1\n<!-- a:end -->"
