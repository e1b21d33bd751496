"""Exp 6.4 across models (faceattr.compare.across_models): joined per method on pair_id."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import pytest

from faceattr.compare.across_models import across_models, main, model_rows, render
from faceattr.compare.runs import load_run
from faceattr.errors import EXIT_INPUT, EXIT_OK, InputError
from tests.compare.builders import record, write_records_run


def _run(root: Path, model: str, verdicts: list[bool], *, trivial: tuple[int, ...] = (),
         salt: str = "") -> Path:
    records = [replace(record(i, "saliency", v, status="trivial" if i in trivial else "valid"),
                       model=model) for i, v in enumerate(verdicts)]
    return write_records_run(root / model, {"saliency": records}, image_salt=salt)


def test_the_same_verdicts_on_two_models_are_equivalent(tmp_path: Path) -> None:
    verdicts = [i % 4 == 0 for i in range(200)]
    a = load_run(_run(tmp_path, "net_a", verdicts, trivial=(0, 4)))
    b = load_run(_run(tmp_path, "net_b", verdicts))
    (pc,) = across_models([a, b], margin=0.1, alpha=0.05)
    assert (pc.model, pc.method, pc.verdict, pc.n_shared) == ("net_a vs net_b", "saliency",
                                                              "equivalent", 200)
    (row,) = model_rows(a, alpha=0.05)
    assert (row.n_pairs, row.n_trivial) == (200, 2)
    assert row.fr == pytest.approx(50 / 200)
    assert row.trivial_low < row.trivial < row.trivial_high


def test_a_difference_is_shown_and_few_pairs_are_inconclusive(tmp_path: Path) -> None:
    a = load_run(_run(tmp_path / "x", "net_a", [False] * 40))
    b = load_run(_run(tmp_path / "x", "net_b", [True] * 40))
    (pc,) = across_models([a, b], margin=0.1, alpha=0.05)
    assert pc.verdict == "regression"  # a difference shown (rendered as "different")
    assert "different (difference shown)" in render([a, b], margin=0.1, alpha=0.05)
    c = load_run(_run(tmp_path / "y", "net_a", [i < 2 for i in range(12)]))
    d = load_run(_run(tmp_path / "y", "net_b", [i in (1, 2) for i in range(12)]))
    (few,) = across_models([c, d], margin=0.1, alpha=0.05)
    assert few.verdict == "inconclusive"


def test_runs_on_other_images_are_refused(tmp_path: Path) -> None:
    a = load_run(_run(tmp_path, "net_a", [False] * 10))
    b = load_run(_run(tmp_path, "net_b", [False] * 10, salt="f"))
    with pytest.raises(InputError, match=r"pair p0000 names other images in .*net_b"):
        across_models([a, b], margin=0.1, alpha=0.05)


def test_the_command_line(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    a = _run(tmp_path, "net_a", [False] * 10)
    b = _run(tmp_path, "net_b", [False] * 10)
    assert main([str(a), str(b)]) == EXIT_OK
    assert "| net_a | saliency | 10 |" in capsys.readouterr().out
    assert main([str(a)]) == EXIT_INPUT
    assert capsys.readouterr().err == "faceattr: error: give at least two run folders\n"
