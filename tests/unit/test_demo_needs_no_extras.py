"""``make demo`` installs the base package only: the demo must run without any extra."""

from __future__ import annotations

import re
import subprocess
import sys
import textwrap
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
EXTRAS = ("ray", "playwright", "onnx", "onnxruntime", "fastapi", "fastapi_offline", "uvicorn",
          "watchdog", "prometheus_client", "httpx", "multipart", "torchcrepe", "pytest")


def _rule(makefile: str, target: str) -> tuple[str, list[str]]:
    match = re.search(rf"^{re.escape(target)}:([^\n]*)\n((?:\t[^\n]*\n)*)", makefile, re.M)
    assert match, f"no rule for {target}"
    return match.group(1), match.group(2).splitlines()


def test_make_demo_installs_no_extra_and_make_test_installs_dev():
    text = (ROOT / "Makefile").read_text()
    demo_deps, _ = _rule(text, "demo")
    assert demo_deps.split() == ["install-base"]
    _, base = _rule(text, "$(BASE)")
    installs = [line for line in base if "pip install" in line]
    assert installs and all("[" not in line for line in installs), installs
    _, full = _rule(text, "$(STAMP)")
    assert any("'.[dev]'" in line for line in full)
    test_deps, _ = _rule(text, "test")
    assert test_deps.split() == ["install"]


def test_the_demo_runs_with_every_extra_missing(tmp_path):
    code = textwrap.dedent(f"""
        import sys
        class Block:
            def find_spec(self, name, path=None, target=None):
                if name.split(".")[0] in {EXTRAS!r}:
                    raise ImportError(f"{{name}} is an extra: blocked")
        sys.meta_path.insert(0, Block())
        from soundwatch.demo import run_demo
        result = run_demo({str(tmp_path)!r}, detectors=["mahalanobis"],
                          data_options={{"machines": ["fan"], "train_source": 6,
                                        "train_target": 2, "test_per_group": 2,
                                        "seconds": 1.0}},
                          params={{"mahalanobis": {{"frontend_params": {{"n_mels": 32}}}}}})
        assert result.reports["mahalanobis"].is_file()
        print("ok")
    """)
    res = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         timeout=600)
    assert res.returncode == 0, res.stderr[-3000:]
    assert res.stdout.strip().endswith("ok")
