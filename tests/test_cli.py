# The CLI's exit codes and one-line errors.
from __future__ import annotations

from pathlib import Path

import pytest

from faceattr.cli import main
from tests.helpers import small_protocol, untrained_weights


def _write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "p.toml"
    path.write_text(text, encoding="utf-8")
    return path


def test_missing_protocol_is_exit_2_with_one_line(tmp_path: Path,
                                                  capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["run", str(tmp_path / "nope.toml"), "--quiet"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1
    assert "protocol file not found" in err


def test_percent_where_a_fraction_is_due_is_exit_2(tmp_path: Path,
                                                   capsys: pytest.CaptureFixture[str]) -> None:
    path = _write(tmp_path, small_protocol().replace("q_frac = 0.10", "q_frac = 10"))
    assert main(["run", str(path), "--quiet", "--reports-dir", str(tmp_path)]) == 2
    assert "a fraction, not a percent" in capsys.readouterr().err


def test_untrained_model_fails_the_gate_with_exit_1(
        tmp_path: Path, capsys: pytest.CaptureFixture[str],
        monkeypatch: pytest.MonkeyPatch) -> None:
    # a random-initialised network (explicit generator) written by the test: not a face model
    weights = untrained_weights(tmp_path)
    monkeypatch.setenv("FACEATTR_SYNTHETIC_WEIGHTS", str(weights))
    path = _write(tmp_path, small_protocol(n_pairs=40).replace("min_auc = 0.5", "min_auc = 0.9"))
    assert main(["run", str(path), "--quiet", "--reports-dir", str(tmp_path)]) == 1
    err = capsys.readouterr().err
    assert "model gate failed: synthetic_cnn AUC" in err
    assert not list(tmp_path.glob("*/records.jsonl"))  # stopped before any attribution


def test_run_then_status(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = _write(tmp_path, small_protocol(n_pairs=4, methods=("oracle",)))
    assert main(["run", str(path), "--quiet", "--reports-dir", str(tmp_path)]) == 0
    assert main(["status", str(path), "--reports-dir", str(tmp_path)]) == 0
    assert "complete; 4 records of 4 pairs x 1 methods" in capsys.readouterr().out


def test_plan_lists_every_method(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = _write(tmp_path, small_protocol(methods=("oracle", "saliency")))
    assert main(["plan", str(path)]) == 0
    out = capsys.readouterr().out
    assert "oracle" in out
    assert "saliency" in out
    assert "12 pairs x 2 methods" in out
