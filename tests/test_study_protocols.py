# The shipped study protocols (exp6_1, exp6_4) load, and exp6_1 runs end to end on stand-ins:
# a fabricated LFW-format folder and FaceNet weights the test writes (random, with re-estimated
# BatchNorm) — never a download.
from __future__ import annotations

import tomllib
from pathlib import Path
from typing import Any

import pytest
import torch

from faceattr.experiments.run import run_protocol
from faceattr.models.facenet import random_facenet
from faceattr.protocol import load_protocol, parse_protocol
from faceattr.runfolder.folder import load_records
from tests.data.test_lfw import PAIRS_TXT, fabricate_lfw

STUDIES = Path(__file__).parents[1] / "validation" / "protocols" / "studies"


@pytest.mark.parametrize("path", sorted(STUDIES.glob("exp6_*.toml")), ids=lambda p: p.stem)
def test_study_protocol_loads(path: Path) -> None:
    protocol = load_protocol(path)
    assert protocol.data.source == "lfw"
    assert protocol.claims


def test_exp6_4_files_share_the_pairs_of_exp6_1() -> None:
    specs = {p.stem: load_protocol(p).data for p in STUDIES.glob("exp6_*.toml")}
    keys = {(s.get("root"), s.get("pairs_file"), s.get("n_pairs")) for s in specs.values()}
    assert len(keys) == 1


def _stand_in(tmp_path: Path) -> dict[str, Any]:
    lfw = fabricate_lfw(tmp_path)
    (tmp_path / "pairs.txt").write_text(PAIRS_TXT, encoding="utf-8")
    weights = tmp_path / "20180402-114759-vggface2.pt"
    torch.save(random_facenet(0).network.state_dict(), weights)
    raw = tomllib.loads((STUDIES / "exp6_1.toml").read_text(encoding="utf-8"))
    raw["data"] |= {"root": str(lfw), "pairs_file": str(tmp_path / "pairs.txt"), "n_pairs": 4,
                    "alignment": "center"}  # random pixels hold no face for MTCNN
    raw["model"] |= {"weights": str(weights), "min_auc": 0.0}  # random weights: no gate
    raw["falsification"]["k_per_region"] = 4
    # random weights have no thresholds to calibrate (the file's own are `faceattr calibrate`d)
    raw["falsification"] |= {"thresholds": "fixed", "thresholds_reason": "stand-in weights"}
    del raw["calibration"]
    keep = {"grad_cam", "saliency", "random", "constant"}
    raw["methods"] = [m for m in raw["methods"] if m["method"] in keep]
    raw["claims"] = [c for c in raw["claims"] if c.get("method", "grad_cam") in keep
                     and c["kind"] not in ("fr_separation", "completeness")]
    return raw


def test_exp6_1_runs_on_stand_ins(tmp_path: Path) -> None:
    raw = _stand_in(tmp_path)
    protocol = parse_protocol(raw, str(tmp_path / "exp6_1_stand_in.toml"))
    folder = run_protocol(protocol, tmp_path / "reports", progress=False)
    records = load_records(folder)
    assert len(records) == 4 * 4
    assert {r.model for r in records} == {"facenet_vggface2"}
    assert {r.status for r in records if r.method == "constant"} == {"trivial"}
    assert all(r.status == "valid" for r in records if r.method in ("saliency", "random"))
