# A PASS is true for the code, weights and data at hand (issue #17): each planted failure
# gets its documented outcome — a new folder, a one-line error, or a per-pair verdict.
from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from faceattr.errors import IntegrityError, RunLockedError, UnsafeNameError
from faceattr.experiments.identity import source_tree_sha256
from faceattr.experiments.run import run_protocol
from faceattr.integrity import check_safe_name, confined_path, run_lock
from faceattr.protocol import load_protocol
from faceattr.report import render_report
from faceattr.runfolder.folder import RunFolder, load_records
from tests.helpers import small_protocol, untrained_weights

REPO = Path(__file__).parents[1]


def _protocol(tmp_path: Path, text: str, name: str = "p.toml") -> Path:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


def _run(path: Path, reports: Path) -> Path:
    return run_protocol(load_protocol(path), reports, progress=False).root


# --- run identity: anything that can change a result gives a new folder ------------------


def test_changed_weights_give_a_new_folder_that_names_the_previous_run(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = _protocol(tmp_path, small_protocol(n_pairs=6, methods=("oracle",)))
    reports = tmp_path / "reports"
    first = _run(path, reports)
    state = torch.load(REPO / "faceattr/assets/models/synthetic_cnn.pt", weights_only=True)
    name = next(k for k, v in state.items() if v.is_floating_point() and v.ndim == 4)
    state[name] = state[name] * 1.5  # one tensor x1.5
    changed = tmp_path / "changed.pt"
    torch.save(state, changed)
    monkeypatch.setenv("FACEATTR_SYNTHETIC_WEIGHTS", str(changed))
    second = _run(path, reports)
    assert second != first
    assert (first / "summary.json").exists()  # the old run is kept, not mixed
    identity = json.loads((second / "identity.json").read_text())
    assert identity["weights_sha256"] != json.loads(
        (first / "identity.json").read_text())["weights_sha256"]
    lineage = json.loads((second / "lineage.json").read_text())
    assert lineage["previous_run"] == first.name
    assert [d for d in lineage["differences"] if d.startswith("weights_sha256")]
    assert f"faceattr compare {first}" in lineage["compare"]
    monkeypatch.delenv("FACEATTR_SYNTHETIC_WEIGHTS")
    assert _run(path, reports) == first  # unchanged again: the verified old run is reused


def _folder_protocol(root: Path) -> str:
    text = small_protocol(n_pairs=6, methods=("random",)).replace(
        'source = "synthetic"\nworld_seed = 0\nn_pairs = 6\ngenuine_fraction = 0.5\n'
        'first_identity = 1000',
        f'source = "folder"\nroot = "{root}"\nn_pairs = 6\ngenuine_fraction = 0.5\n'
        'alignment = "center"\nsize_px = 64')
    assert 'source = "folder"' in text
    return text.replace("min_auc = 0.5", "min_auc = 0.0")


def test_a_changed_image_in_a_folder_source_gives_a_new_folder(tmp_path: Path) -> None:
    data = tmp_path / "faces"
    rng = np.random.default_rng(3)
    for person in ("ann", "bob", "cy"):
        (data / person).mkdir(parents=True)
        for k in range(3):
            Image.fromarray(rng.integers(0, 255, (64, 64, 3), dtype=np.uint8)).save(
                data / person / f"{k}.png")
    path = _protocol(tmp_path, _folder_protocol(data))
    reports = tmp_path / "reports"
    first = _run(path, reports)
    manifest = json.loads((first / "manifest.json").read_text())
    used = manifest["pairs"][0]["image_a"]
    Image.fromarray(np.zeros((64, 64, 3), dtype=np.uint8)).save(data / used)
    second = _run(path, reports)
    assert second != first
    differences = json.loads((second / "lineage.json").read_text())["differences"]
    assert any(d.startswith("manifest_sha256") for d in differences)


def test_a_changed_source_tree_gives_a_new_folder(tmp_path: Path,
                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    # the hash covers every code file of the package: one changed byte moves it
    tree = tmp_path / "tree"
    (tree / "sub").mkdir(parents=True)
    (tree / "a.py").write_text("x = 1\n")
    (tree / "sub" / "t.j2").write_text("{{ x }}\n")
    before = source_tree_sha256(tree)
    (tree / "sub" / "t.j2").write_text("{{ y }}\n")
    assert source_tree_sha256(tree) != before
    assert source_tree_sha256() == source_tree_sha256()  # the package's own, stable
    path = _protocol(tmp_path, small_protocol(n_pairs=6, methods=("oracle",)))
    first = _run(path, tmp_path / "reports")
    from faceattr.experiments import identity

    monkeypatch.setattr(identity, "_package_tree_sha256", lambda: "f" * 64)
    second = _run(path, tmp_path / "reports")
    assert second != first
    differences = json.loads((second / "lineage.json").read_text())["differences"]
    assert differences == [f'source_sha256: "{source_tree_sha256_of(first)}" -> "{"f" * 64}"']


def source_tree_sha256_of(root: Path) -> str:
    return str(json.loads((root / "identity.json").read_text())["source_sha256"])


# --- locked, verified run folders ------------------------------------------------------------


def test_a_second_writer_gets_a_one_line_error_naming_the_holder(tmp_path: Path) -> None:
    path = _protocol(tmp_path, small_protocol(n_pairs=6, methods=("oracle",)))
    from faceattr.experiments.run import resolve_run_folder

    root = resolve_run_folder(load_protocol(path), tmp_path / "reports").root
    holder = subprocess.Popen(
        [sys.executable, "-c", "import sys, time; from pathlib import Path; "
         "from faceattr.integrity import run_lock\n"
         "with run_lock(Path(sys.argv[1])):\n print('held', flush=True); time.sleep(60)",
         str(root)], stdout=subprocess.PIPE, text=True, cwd=REPO)
    try:
        assert holder.stdout is not None
        assert holder.stdout.readline().strip() == "held"
        with pytest.raises(RunLockedError, match=rf"being written by another faceattr process "
                                                 rf"\(PID {holder.pid} on "):
            run_protocol(load_protocol(path), tmp_path / "reports", progress=False)
    finally:
        holder.kill()
        holder.wait()
        if holder.stdout is not None:
            holder.stdout.close()
    assert not (root / "records.jsonl").exists()  # nothing was written twice
    _run(path, tmp_path / "reports")  # the lock died with its holder


def test_the_lock_is_reentrant_in_one_process(tmp_path: Path) -> None:
    with run_lock(tmp_path / "r"), run_lock(tmp_path / "r"):
        assert (tmp_path / "r" / ".faceattr.lock.owner").exists()
    assert not (tmp_path / "r" / ".faceattr.lock.owner").exists()


def _flip_verdicts(records: Path, n: int) -> None:
    lines = records.read_text().splitlines()
    for i in range(n):
        row = json.loads(lines[i])
        row["falsified"] = not row["falsified"]
        lines[i] = json.dumps(row, sort_keys=True, separators=(",", ":"))
    records.write_text("\n".join(lines) + "\n")


def test_hand_edited_records_are_refused_by_reuse_and_report(tmp_path: Path) -> None:
    path = _protocol(tmp_path, small_protocol(n_pairs=8, methods=("oracle", "random")))
    root = _run(path, tmp_path / "reports")
    _flip_verdicts(root / "records.jsonl", 5)
    with pytest.raises(IntegrityError, match=r"records.jsonl: edited after the run .* "
                                             r"re-run with --force-rerun or restore it"):
        _run(path, tmp_path / "reports")
    with pytest.raises(IntegrityError, match=r"records\.jsonl: edited after the run"):
        render_report(root)
    again = run_protocol(load_protocol(path), tmp_path / "reports", progress=False,
                         force_rerun=True)
    assert again.root == root
    assert len(load_records(again)) == 16


def test_a_summary_that_disagrees_with_its_records_is_refused() -> None:
    from faceattr.runfolder.folder import check_summary_against_records
    from tests.helpers import records, run

    rows = records("m1", n_falsified=3, n_passed=5)
    summary = run({"m1": rows})
    check_summary_against_records(summary, rows, "run")
    doubled = rows + rows  # two writers appended every record twice
    with pytest.raises(IntegrityError, match=r"disagrees with records\.jsonl for m1"):
        check_summary_against_records(summary, doubled, "run")
    with pytest.raises(IntegrityError, match="distinct pairs"):
        check_summary_against_records(run({"m1": doubled}), doubled, "run")


# --- safe names --------------------------------------------------------------------------------


@pytest.mark.parametrize("name", ["../../escaped_run", "/tmp/abs", "a b", "..", "x/y", ""])
def test_unsafe_names_are_refused(name: str) -> None:
    with pytest.raises(UnsafeNameError, match="not a safe name"):
        check_safe_name("protocol name", name)


def test_a_traversal_protocol_name_never_writes_outside_the_reports_dir(tmp_path: Path) -> None:
    from faceattr.config import ProtocolError

    for bad in ("../../escaped_run", "/tmp/escaped_run"):
        text = small_protocol(n_pairs=4, methods=("oracle",)).replace(
            'name = "small"', f'name = "{bad}"')
        path = _protocol(tmp_path, text)
        with pytest.raises(ProtocolError, match=r"\[protocol\]: protocol name .* is not a safe "
                                                r"name"):
            load_protocol(path)
    assert not list(tmp_path.rglob("escaped_run*"))
    with pytest.raises(UnsafeNameError, match="outside the reports directory"):
        confined_path(tmp_path / "reports", "../x")
    text = small_protocol(n_pairs=4, methods=("oracle",)).replace(
        '[[methods]]\nmethod = "oracle"', '[[methods]]\nid = "../o"\nmethod = "oracle"')
    with pytest.raises(ProtocolError, match=r"method id '\.\./o' is not a safe name"):
        load_protocol(_protocol(tmp_path, text))


# --- failures become per-pair verdicts ---------------------------------------------------------


class _Sometimes:
    """Wraps a method: NaN maps on every fifth pair, an exception on one pair."""

    def __init__(self, inner: object, raise_on: str | None) -> None:
        self.inner = inner
        self.raise_on = raise_on

    def __getattr__(self, name: str) -> object:
        return getattr(self.inner, name)

    def attribute_with_details(self, batch: object) -> object:
        ids = batch.pair_ids  # type: ignore[attr-defined]
        if self.raise_on in ids:
            raise RuntimeError(f"cannot explain {self.raise_on}")
        details = self.inner.attribute_with_details(batch)  # type: ignore[attr-defined]
        for row, pair_id in enumerate(ids):
            if int(pair_id[-2:], 16) % 5 == 0:
                details.maps[row] = np.nan
        return details


def _run_with_faulty_method(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, name: str,
                            pairs_per_batch: int, raise_on: str | None) -> list[object]:
    from faceattr.experiments import context as context_module

    real = context_module.build_methods

    def faulty(protocol: object) -> list[object]:
        return [_Sometimes(m, raise_on) if m.method_id == "saliency" else m
                for m in real(protocol)]  # type: ignore[arg-type]

    monkeypatch.setattr(context_module, "build_methods", faulty)  # the executor's builder
    path = _protocol(tmp_path, small_protocol(n_pairs=15, pairs_per_batch=pairs_per_batch,
                                              methods=("saliency", "oracle")), f"{name}.toml")
    folder = run_protocol(load_protocol(path), tmp_path / name, progress=False)
    return load_records(folder)  # type: ignore[return-value]


def test_nan_maps_and_an_exception_are_per_pair_errors_whatever_the_batching(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    first = _run_with_faulty_method(tmp_path, monkeypatch, "a", 5, None)
    saliency = [r for r in first if r.method == "saliency"]  # type: ignore[attr-defined]
    nan_pairs = {r.pair_id for r in saliency if int(r.pair_id[-2:], 16) % 5 == 0}
    assert nan_pairs
    assert len(nan_pairs) < len(saliency)
    assert {r.pair_id for r in saliency if r.status == "error:NonFiniteMap"} == nan_pairs
    assert all(r.status == "valid" for r in saliency if r.pair_id not in nan_pairs)
    target = next(r.pair_id for r in saliency if r.pair_id not in nan_pairs)
    by_batching = [
        [(r.pair_id, r.method, r.status, r.margin_rad) for r in  # type: ignore[attr-defined]
         _run_with_faulty_method(tmp_path, monkeypatch, name, step, target)]
        for name, step in (("b", 5), ("c", 2), ("d", 15))]
    assert by_batching[0] == by_batching[1] == by_batching[2]  # never depends on grouping
    statuses = {pair_id: status for pair_id, method, status, _ in by_batching[0]
                if method == "saliency"}
    assert statuses[target] == "error:RuntimeError"
    assert sum(s == "error:RuntimeError" for s in statuses.values()) == 1
    assert all(status == "valid" for pair_id, method, status, _ in by_batching[0]
               if method == "oracle")


def test_a_protocol_directory_or_unreadable_weights_exit_2_in_one_line(
        tmp_path: Path, capsys: pytest.CaptureFixture[str],
        monkeypatch: pytest.MonkeyPatch) -> None:
    from faceattr.cli import main

    assert main(["run", str(tmp_path), "--quiet"]) == 2
    assert len(capsys.readouterr().err.strip().splitlines()) == 1
    garbage = tmp_path / "garbage.pt"
    garbage.write_bytes(b"not a torch file")
    monkeypatch.setenv("FACEATTR_SYNTHETIC_WEIGHTS", str(garbage))
    path = _protocol(tmp_path, small_protocol(n_pairs=4, methods=("oracle",)))
    assert main(["run", str(path), "--quiet", "--reports-dir", str(tmp_path / "r")]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1
    assert "garbage.pt" in err[0]


def test_a_bug_in_faceattr_is_an_internal_error_with_its_traceback(
        tmp_path: Path, capsys: pytest.CaptureFixture[str],
        monkeypatch: pytest.MonkeyPatch) -> None:
    from faceattr import cli
    from faceattr.experiments import run as run_module

    def broken(*args: object, **kwargs: object) -> None:
        raise ValueError("an internal invariant")

    monkeypatch.setattr(run_module, "run_protocol", broken)
    path = _protocol(tmp_path, small_protocol(n_pairs=4, methods=("oracle",)))
    assert cli.main(["run", str(path), "--quiet"]) == 3
    err = capsys.readouterr().err
    assert "Traceback (most recent call last)" in err
    assert "internal error (a bug in faceattr, not in your input): please report" in err


# --- the validation suite: a failed gate stops once; xdist is refused ---------------------------


GATE_CLAIMS = """
[[claims]]
kind = "fr_at_most"
method = "oracle"
threshold = 0.5

[[claims]]
kind = "model_gate"
min_auc = 0.9
"""


def test_a_failed_gate_stops_the_run_once_and_every_claim_is_not_evaluated(
        tmp_path: Path) -> None:
    path = _protocol(tmp_path, small_protocol(n_pairs=40, methods=("oracle", "random"),
                                              claims=GATE_CLAIMS).replace(
        "min_auc = 0.5", "min_auc = 0.9"))
    env = {**__import__("os").environ,
           "FACEATTR_SYNTHETIC_WEIGHTS": str(untrained_weights(tmp_path))}
    started = time.monotonic()
    done = subprocess.run(
        [sys.executable, "-m", "pytest", str(REPO / "validation"), "-p", "no:cacheprovider",
         "-q", "--protocol", str(path), "--reports-dir", str(tmp_path / "reports")],
        cwd=REPO, capture_output=True, text=True, timeout=600, check=False, env=env)
    assert done.returncode == 1, done.stdout + done.stderr
    assert "Traceback" not in done.stdout
    assert done.stdout.count("not evaluated: model gate failed: synthetic_cnn AUC") >= 4
    (root,) = (tmp_path / "reports").iterdir()
    claims = json.loads((root / "claims.json").read_text())
    assert {c["outcome"] for c in claims["claims"]} == {"not evaluated"}
    assert claims["gate_passed"] is False
    assert len(claims["claims"]) == 4  # 2 declared + 2 implicit error budgets
    assert not (root / "records.jsonl").exists()
    html = (root / "report.html").read_text()
    assert "GATE FAILED" in html
    assert "the model gate failed (AUC" in html
    assert time.monotonic() - started < 300


def test_xdist_is_refused_with_a_clear_message(tmp_path: Path) -> None:
    pytest.importorskip("xdist", reason="pytest-xdist is not installed")
    done = subprocess.run(
        [sys.executable, "-m", "pytest", str(REPO / "validation"), "-p", "no:cacheprovider",
         "-n", "2", "--reports-dir", str(tmp_path / "reports")],
        cwd=REPO, capture_output=True, text=True, timeout=300, check=False)
    assert done.returncode == 4, done.stdout + done.stderr  # pytest: usage error
    assert "does not run under pytest-xdist" in done.stderr
    assert not (tmp_path / "reports").exists()


def test_every_artefact_of_a_run_is_recorded_and_verifies(tmp_path: Path) -> None:
    from faceattr.integrity import recorded_artefacts, verify_artefacts

    path = _protocol(tmp_path, small_protocol(n_pairs=6, methods=("oracle",)))
    root = _run(path, tmp_path / "reports")
    ledger = recorded_artefacts(root)
    on_disk = {p.name for p in root.iterdir() if p.is_file() and not p.name.startswith(".")}
    assert on_disk - {"provenance.json"} == set(ledger)
    verify_artefacts(root, required=tuple(ledger))
    (root / "timing.json").write_text("{}")
    with pytest.raises(IntegrityError, match=r"timing\.json: edited after the run"):
        verify_artefacts(root)
    assert RunFolder(root).summary.exists()
