# A protocol run end to end on the synthetic world: determinism, resume, the gate.
from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from faceattr.experiments.run import run_protocol
from faceattr.protocol import load_protocol
from faceattr.runfolder.folder import load_records
from tests.helpers import small_protocol

REPO = Path(__file__).parents[1]


def _run(tmp_path: Path, name: str, text: str) -> Path:
    path = tmp_path / f"{name}.toml"
    path.write_text(text, encoding="utf-8")
    folder = run_protocol(load_protocol(path), tmp_path / name, progress=False)
    return folder.root


def test_same_seed_same_bytes_whatever_batch_size_and_method_order(tmp_path: Path) -> None:
    first = _run(tmp_path, "a", small_protocol(pairs_per_batch=5))
    second = _run(tmp_path, "b", small_protocol(
        pairs_per_batch=3, methods=("constant", "random", "inverted", "oracle", "saliency")))
    assert (first / "records.jsonl").read_bytes() == (second / "records.jsonl").read_bytes()
    assert (first / "summary.json").read_bytes() == (second / "summary.json").read_bytes()


def test_different_seed_changes_the_stochastic_fields(tmp_path: Path) -> None:
    a = _run(tmp_path, "a", small_protocol(seed=5, methods=("random",)))
    b = _run(tmp_path, "b", small_protocol(seed=6, methods=("random",)))
    assert (a / "records.jsonl").read_bytes() != (b / "records.jsonl").read_bytes()


def test_every_pair_has_a_status_and_constant_maps_are_trivial(tmp_path: Path) -> None:
    from faceattr.runfolder.folder import RunFolder

    records = load_records(RunFolder(_run(tmp_path, "a", small_protocol(n_pairs=8))))
    assert len(records) == 8 * 5
    assert {r.status for r in records if r.method == "constant"} == {"trivial"}
    assert all(r.falsified for r in records if r.method == "constant")
    assert {r.status for r in records if r.method == "oracle"} == {"valid"}


def test_a_killed_run_resumes_to_the_same_bytes(tmp_path: Path,
                                                monkeypatch: pytest.MonkeyPatch) -> None:
    from faceattr.experiments import run as run_module

    whole = _run(tmp_path, "whole", small_protocol(pairs_per_batch=2))
    path = tmp_path / "crash.toml"
    path.write_text(small_protocol(pairs_per_batch=2), encoding="utf-8")
    protocol = load_protocol(path)
    original = run_module._RecordsLog.append
    calls = {"n": 0}

    def crash_after_two_batches(self: object, records: list[object]) -> None:
        calls["n"] += 1
        if calls["n"] == 3:  # half of the third batch reaches the disk, then the process dies
            lines = "".join(run_module.record_line(r, "t") for r in records)  # type: ignore[arg-type]
            with run_module.RunFolder(self.folder.root).records.open("a") as handle:  # type: ignore[attr-defined]
                handle.write(lines[:len(lines) // 2])
            raise KeyboardInterrupt
        original(self, records)  # type: ignore[arg-type]

    monkeypatch.setattr(run_module._RecordsLog, "append", crash_after_two_batches)
    with pytest.raises(KeyboardInterrupt):
        run_protocol(protocol, tmp_path / "crash", progress=False)
    monkeypatch.undo()
    resumed = run_protocol(protocol, tmp_path / "crash", progress=False)
    assert resumed.records.read_bytes() == (whole / "records.jsonl").read_bytes()
    assert json.loads(resumed.timing.read_text())["resumed_pairs"] == 4  # 2 batches of 2


def test_an_edited_protocol_copy_in_a_run_folder_is_refused(tmp_path: Path) -> None:
    from faceattr.errors import IntegrityError

    root = _run(tmp_path, "a", small_protocol())
    (root / "protocol.json").write_text('{"other": 1}', encoding="utf-8")
    path = tmp_path / "a.toml"
    with pytest.raises(IntegrityError, match=r"protocol.json: edited after the run"):
        run_protocol(load_protocol(path), tmp_path / "a", progress=False)


DEFECT_CLAIMS = """
[[claims]]
kind = "fr_at_most"
method = "oracle"
threshold = 0.5

[[claims]]
kind = "fr_at_most"
method = "inverted"
threshold = 0.05
"""


def test_planted_defect_fails_the_gate_and_the_report_says_so(tmp_path: Path) -> None:
    path = tmp_path / "defect.toml"
    path.write_text(small_protocol(methods=("oracle", "inverted"), claims=DEFECT_CLAIMS),
                    encoding="utf-8")
    done = subprocess.run(
        [sys.executable, "-m", "pytest", str(REPO / "validation"), "-p", "no:cacheprovider",
         "-q", "--protocol", str(path), "--reports-dir", str(tmp_path / "reports")],
        cwd=REPO, capture_output=True, text=True, timeout=600, check=False)
    assert done.returncode == 1, done.stdout + done.stderr
    assert "1 failed, 3 passed" in done.stdout  # + the implicit error budget of each method
    (run_dir,) = (tmp_path / "reports").iterdir()
    claims = json.loads((run_dir / "claims.json").read_text())
    outcomes = {c["claim_id"]: c["outcome"] for c in claims["claims"]}
    assert outcomes == {"control:oracle:fr<=0.5": "passed", "control:inverted:fr<=0.05": "failed",
                        "errors:inverted:n_error<=0": "passed",
                        "errors:oracle:n_error<=0": "passed"}
    assert claims["gate_passed"] is False
    html = (run_dir / "report.html").read_text()
    assert "GATE FAILED" in html
    assert "control:inverted:fr&lt;=0.05: failed" in html


def test_three_merged_shards_equal_a_single_run(tmp_path: Path) -> None:
    from faceattr.experiments.run import Shard
    from faceattr.experiments.shards import merge_shards

    single = _run(tmp_path, "single", small_protocol(n_pairs=10))
    path = tmp_path / "sharded.toml"
    path.write_text(small_protocol(n_pairs=10, pairs_per_batch=2), encoding="utf-8")
    protocol = load_protocol(path)
    with pytest.raises(ValueError, match="incomplete shard"):
        merge_shards(protocol, tmp_path / "sharded", count=3)
    for index in (2, 0, 1):
        run_protocol(protocol, tmp_path / "sharded", progress=False, shard=Shard(index, 3))
    merged = merge_shards(protocol, tmp_path / "sharded", count=3)
    for name in ("records.jsonl", "summary.json", "manifest.json"):
        assert (merged.root / name).read_bytes() == (single / name).read_bytes(), name


def test_shard_syntax_is_checked() -> None:
    from faceattr.experiments.run import Shard

    assert Shard.parse("1/3") == Shard(1, 3)
    with pytest.raises(ValueError, match="expected i/n"):
        Shard.parse("1-3")
    with pytest.raises(ValueError, match="with 0 <= i < n"):
        Shard.parse("3/3")


def test_a_corrupted_record_fails_schema_validation_on_read(tmp_path: Path) -> None:
    from faceattr.runfolder.folder import RunFolder

    root = _run(tmp_path, "a", small_protocol(n_pairs=4, methods=("oracle",)))
    lines = (root / "records.jsonl").read_text().splitlines(keepends=True)
    lines[1] = lines[1].replace('"pairwise_violation_frac":0.0', '"pairwise_violation_frac":50.0')
    (root / "records.jsonl").write_text("".join(lines))
    with pytest.raises(ValueError, match=r"records.jsonl:2: record schema violation at "
                                         r"pairwise_violation_frac: 50.0 is greater than"):
        load_records(RunFolder(root))


def test_determinism_stage_reruns_in_fresh_processes(tmp_path: Path) -> None:
    text = small_protocol(n_pairs=6, methods=("oracle", "random")).replace(
        "[execution]", "[determinism]\nn_pairs = 2\n\n[execution]")
    root = _run(tmp_path, "d", text)
    result = json.loads((root / "determinism.json").read_text())
    assert result["identical_across_processes"] is True
    assert result["n_lines_compared"] == 4
    assert result["seed_changes_stochastic"] is True


def test_a_run_killed_with_sigkill_resumes_to_the_same_bytes(tmp_path: Path) -> None:
    import os
    import signal
    import time

    text = small_protocol(n_pairs=16, pairs_per_batch=1)
    whole = _run(tmp_path, "whole", text)
    path = tmp_path / "killed.toml"
    path.write_text(text, encoding="utf-8")
    reports = tmp_path / "killed"
    command = [sys.executable, "-m", "faceattr", "run", str(path), "--quiet",
               "--reports-dir", str(reports)]
    from faceattr.experiments.run import resolve_run_folder

    records = resolve_run_folder(load_protocol(path), reports).records
    process = subprocess.Popen(command, cwd=REPO)
    deadline = time.monotonic() + 300
    while time.monotonic() < deadline:  # wait until a few pairs are on disk, then kill -9
        if records.exists() and records.read_text().count("\n") >= 12:
            break
        time.sleep(0.05)
    os.kill(process.pid, signal.SIGKILL)
    process.wait()
    assert process.returncode == -signal.SIGKILL
    assert not (records.parent / "summary.json").exists()  # really interrupted
    done = subprocess.run(command, cwd=REPO, capture_output=True, text=True, check=False)
    assert done.returncode == 0, done.stderr
    assert records.read_bytes() == (whole / "records.jsonl").read_bytes()
    assert json.loads((records.parent / "timing.json").read_text())["resumed_pairs"] >= 2


def test_baseline_comparison_stage(tmp_path: Path) -> None:
    base = _run(tmp_path, "base", small_protocol(n_pairs=40, methods=("oracle", "random")))
    same = small_protocol(n_pairs=40, methods=("oracle", "random")) + (
        f'\n[baseline]\npath = "{base}"\nmargin = 0.3\n')
    root = _run(tmp_path, "same", same)
    comparison = json.loads((root / "comparison.json").read_text())
    assert comparison["exit_code"] == 0, comparison["exit_reasons"]
    assert (root / "comparison.txt").read_text().startswith("faceattr compare")
    # a silently changed fill against the same baseline is caught
    changed = same.replace('fill = "mean"', 'fill = "zero"').replace("seed = 5", "seed = 9")
    moved = json.loads((_run(tmp_path, "moved", changed) / "comparison.json").read_text())
    assert moved["exit_code"] != 0


FULL_CLAIMS = """
[[claims]]
kind = "model_gate"
min_auc = 0.5

[[claims]]
kind = "all_trivial"
method = "constant"

[[claims]]
kind = "distinct_maps"
"""


def test_the_report_of_a_real_run_has_every_claim_and_figure(tmp_path: Path) -> None:
    text = small_protocol(n_pairs=6, methods=("saliency", "oracle", "constant"),
                          claims=FULL_CLAIMS).replace(
        "[execution]", "[randomisation]\nn_pairs = 2\ncompleteness_n_steps = [2, 4]\n\n"
                       "[execution]")
    path = tmp_path / "full.toml"
    path.write_text(text, encoding="utf-8")
    done = subprocess.run(
        [sys.executable, "-m", "pytest", str(REPO / "validation"), "-p", "no:cacheprovider",
         "-q", "--protocol", str(path), "--reports-dir", str(tmp_path / "reports")],
        cwd=REPO, capture_output=True, text=True, timeout=600, check=False)
    assert done.returncode == 0, done.stdout + done.stderr
    (run_dir,) = (tmp_path / "reports").iterdir()
    html = (run_dir / "report.html").read_text()
    import html as markup

    for claim_id in ("gate:auc>=0.5", "control:constant:all_trivial", "guard:distinct_maps"):
        assert f'data-claim-id="{markup.escape(claim_id)}"' in html
    for figure in ("forest", "distributions", "k-sufficiency", "map-histograms", "roc",
                   "randomisation", "gallery", "ledger", "provenance", "artefacts"):
        assert f'id="{figure}"' in html, figure
    assert "GATE PASSED" in html
