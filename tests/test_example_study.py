# The example study (examples/mystudy): a researcher's own method (entry point), ONNX model and
# pairs table, validated by the installed gate from a folder outside this checkout (issue #18).
# `nox -s example` does the same from a built wheel in a fresh venv.
from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).parents[1]
EXAMPLE = REPO / "examples" / "mystudy"

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def study(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict[str, str]]:
    """The study folder (outside the checkout) and an environment where the example package
    is installed (its entry point registered) beside this faceattr."""
    root = tmp_path_factory.mktemp("study")
    target = root / "site"
    subprocess.run([sys.executable, "-m", "pip", "install", "--quiet", "--no-deps",
                    "--no-build-isolation", "--target", str(target), str(EXAMPLE)],
                   check=True, capture_output=True, text=True, timeout=600)
    env = {**os.environ, "PYTHONPATH": str(target)}
    work = root / "work"
    work.mkdir()
    for name in ("study.toml", "study_defect.toml"):
        shutil.copy(EXAMPLE / name, work / name)
    subprocess.run([sys.executable, "-m", "mystudy.make_assets", str(work / "assets"),
                    "--n-pairs", "40"], check=True, capture_output=True, text=True, env=env,
                   cwd=work, timeout=600)
    return work, env


def _validate(work: Path, env: dict[str, str], protocol: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "faceattr", "validate", protocol, "--quiet"],
                          cwd=work, env=env, capture_output=True, text=True, timeout=900,
                          check=False)


def test_the_study_passes_its_gate_outside_the_checkout(
        study: tuple[Path, dict[str, str]]) -> None:
    work, env = study
    done = _validate(work, env, "study.toml")
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    (run_dir,) = (work / "reports").glob("mystudy-*")
    claims = json.loads((run_dir / "claims.json").read_text())
    assert claims["gate_passed"] is True
    assert (run_dir / "report.html").is_file()
    records = [json.loads(line) for line in (run_dir / "records.jsonl").read_text().splitlines()]
    assert {r["method"] for r in records} == {"similarity_rise", "saliency", "random", "constant"}
    assert {r["model"] for r in records} == {"model"}  # the ONNX file's stem


def test_a_planted_defect_in_the_study_method_fails_its_gate(
        study: tuple[Path, dict[str, str]]) -> None:
    work, env = study
    done = _validate(work, env, "study_defect.toml")
    assert done.returncode == 1, done.stdout[-3000:] + done.stderr[-3000:]
    (run_dir,) = (work / "reports").glob("mystudy-defect-*")
    claims = json.loads((run_dir / "claims.json").read_text())
    failed = {c["claim_id"] for c in claims["claims"] if c["outcome"] != "passed"}
    assert "control:similarity_rise:fr<=0.5" in failed
    assert "GATE FAILED" in (run_dir / "report.html").read_text()
