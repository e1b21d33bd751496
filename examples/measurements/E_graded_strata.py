# Usage: python examples/measurements/E_graded_strata.py LEVEL REPORTS_DIR (README "Stratified analysis").
# Measurement only: the graded level's [strata] analysis on a trimmed copy of the protocol
# (the 9 analysed methods, no artefact stage; Theorem 3.5 thresholds declared fixed because
# the shipped graded protocols await `faceattr calibrate` in the working tree).
import sys
import time
import tomllib
from pathlib import Path

import torch

torch.set_num_threads(1)
from faceattr.claims import evaluate_claim
from faceattr.experiments.run import run_protocol
from faceattr.gate.judging import run_artefacts, write_verdicts
from faceattr.protocol import parse_protocol
from faceattr.runfolder.folder import load_summary

level = int(sys.argv[1])
path = Path(f"validation/protocols/graded/level{level}.toml")
raw = tomllib.loads(path.read_text())
keep = set(raw["strata"]["methods"])
raw["methods"] = [m for m in raw["methods"] if m.get("id", m["method"]) in keep]
raw.pop("artefacts", None)
raw.pop("metric_validity", None)
raw["claims"] = [c for c in raw["claims"] if c["kind"] == "model_gate"]
raw["falsification"]["thresholds"] = "fixed"
raw["falsification"]["thresholds_reason"] = "measurement copy: the graded levels' own taus"
raw["protocol"]["name"] = f"strata-graded-level{level}"
protocol = parse_protocol(raw, str(path))
t = time.time()
folder = run_protocol(protocol, Path(sys.argv[2]), progress=False)
summary = load_summary(folder)
arts = run_artefacts(protocol, folder, summary)
results = {s.id: evaluate_claim(s, arts) for s in protocol.claims}
print(write_verdicts(protocol, folder, summary, results, {})[1], f"{time.time() - t:.0f} s")
