"""Print per-method FR (Theorem 3.5 and simple, Wilson 95%), ground-truth quality and the
full-cascade randomisation similarity of a run folder. Usage: python summarise.py RUN_DIR"""
import json
import sys
from pathlib import Path

run = Path(sys.argv[1])
s = json.loads((run / "summary.json").read_text())
print(f"run {s['run_name']}  n_pairs {s['n_pairs']}  gate {json.dumps(s['gate'])[:200]}")
print(f"{'method':32s} {'FR theorem [95%]':24s} {'FR simple':10s} {'mask AUC':9s} {'rank acc':9s} trivial")
for name, m in s["methods"].items():
    t, si = m["fr_itt_theorem"], m["fr_itt_simple"]
    auc = m["mean_gt_roc_auc"]; ra = m["mean_gt_rank_accuracy"]
    print(f"{name:32s} {t['estimate']:.2f} [{t['low']:.3f}, {t['high']:.3f}]    {si['estimate']:.2f}       "
          f"{'-' if auc is None else f'{auc:.3f}':9s} {'-' if ra is None else f'{ra:.3f}':9s} {m['n_trivial']}")
rp = run / "randomisation.json"
if rp.exists():
    r = json.loads(rp.read_text())
    print(f"randomisation: {len(r['layers'])} weight layers, {len(r['pair_ids'])} pairs; full cascade:")
    for m in r["methods"]:
        if m["error"]:
            print(f"  {m['method_id']:30s} error {m['error']}")
            continue
        last = m["cascading"][-1]["similarity"]
        top = m["cascading"][0]["similarity"]
        print(f"  {m['method_id']:30s} spearman_abs {last['spearman_abs']['mean']:.3f}  ssim {last['ssim']['mean']:.3f}"
              f"  topk {last['topk']['mean']:.3f}   (after the top layer only: spearman_abs {top['spearman_abs']['mean']:.3f})")
