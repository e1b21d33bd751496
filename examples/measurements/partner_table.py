"""Partner sensitivity of built-in methods on a protocol's pairs (the stage's own code path).

usage: partner_table.py PROTOCOL N_PAIRS [all|protocol]
  protocol: the protocol's methods with its parameters; all: every registered built-in
  (BUILTIN_CHECK_PARAMS), plus the protocol's methods.
"""
import sys
import tempfile
import time
from dataclasses import replace
from pathlib import Path

import torch

torch.set_num_threads(1)
from faceattr.attribution.registry import METHODS, build_method
from faceattr.experiments import stages
from faceattr.experiments.context import RunContext, build_methods
from faceattr.experiments.run import prepare_run
from faceattr.protocol import load_protocol
from faceattr.randomisation.partner import load_partner_sensitivity
from faceattr.randomisation.partner_spec import PartnerSensitivitySpec
from faceattr.randomisation.similarity import METRICS
from faceattr.runfolder.folder import RunFolder
from faceattr.testing.methods import BUILTIN_CHECK_PARAMS

protocol = load_protocol(Path(sys.argv[1]))
n_pairs = int(sys.argv[2])
which = sys.argv[3] if len(sys.argv) > 3 else "protocol"
real_build = build_methods
if which == "all":
    def build_all(p):
        own = real_build(p)
        names = {m.info.name for m in own if m.method_id == m.info.name}
        extra = [build_method(n, n, dict(BUILTIN_CHECK_PARAMS.get(n, {})), "table")
                 for n in sorted(METHODS) if n not in names and n != "inverted"]
        return sorted(own + extra, key=lambda m: m.method_id)
    RunContext.methods = lambda self: build_all(self.protocol)
rows = {}
for metric in METRICS:
    spec = PartnerSensitivitySpec(n_pairs=n_pairs, metric=metric, topk_frac=0.1)
    with tempfile.TemporaryDirectory() as tmp:
        t = time.time()
        p = replace(protocol, partner_sensitivity=spec)
        stages.partner_sensitivity_stage(RunContext(prepare_run(p, Path(tmp)), RunFolder(Path(tmp))))
        wall = time.time() - t
        result = load_partner_sensitivity(Path(tmp))
    for m in result.methods:
        rows.setdefault(m.method_id, {"control": m.is_control})[metric] = (
            m.error[:60] if m.error else (m.mean, min(m.similarity), max(m.similarity), sum(m.original_constant)))
    print(f"# {metric}: stage wall {wall:.1f} s on {result.n_pairs} pairs", file=sys.stderr)
print("| method | control | " + " | ".join(f"{m} mean [min, max]" for m in METRICS) + " |")
print("|---|---|" + "---|" * len(METRICS))
for mid, row in rows.items():
    cells = []
    for metric in METRICS:
        v = row[metric]
        cells.append(v if isinstance(v, str) else f"{v[0]:.3f} [{v[1]:.3f}, {v[2]:.3f}]" + (f" ({v[3]} const)" if v[3] else ""))
    print(f"| {mid} | {'yes' if row['control'] else 'no'} | " + " | ".join(cells) + " |")
