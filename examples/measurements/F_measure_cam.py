"""Branch-attention CAM vs Grad-CAM / LayerCAM at the same Inception blocks: distinctness and
ground-truth quality on held-out synthetic pairs (synthetic_inception), and distinctness on a
random-weights FaceNet. Usage: python measure_cam.py [n_pairs] [n_facenet_pairs]"""
import json
import sys

import numpy as np
import torch

torch.set_num_threads(1)
from faceattr.attribution.attention_cam import BranchAttentionCAM
from faceattr.attribution.base import AttributionBatch
from faceattr.attribution.cam import GradCAM, LayerCAM
from faceattr.attribution.gradient import Saliency
from faceattr.data.synthetic_pairs import SyntheticPairSource
from faceattr.falsification.quality import map_quality
from faceattr.models.loading import load_model
from faceattr.randomisation.similarity import spearman_abs, topk_intersection
from faceattr.rng import torch_generator

n_pairs = int(sys.argv[1]) if len(sys.argv) > 1 else 100
n_face = int(sys.argv[2]) if len(sys.argv) > 2 else 8

def methods(block):
    return {f"ba_cam@{block}": BranchAttentionCAM("a", BranchAttentionCAM.Params(layer=block)),
            f"ba_cam_uniform@{block}": BranchAttentionCAM("u", BranchAttentionCAM.Params(
                layer=block, branch_weighting="uniform")),
            f"grad_cam@{block}": GradCAM("g", GradCAM.Params(layer=block)),
            f"layer_cam@{block}": LayerCAM("l", LayerCAM.Params(layer=block))}

def compare(maps, a, b):
    rho = np.array([spearman_abs(x, y) for x, y in zip(maps[a], maps[b])])
    top = np.array([topk_intersection(x, y, frac=0.10) for x, y in zip(maps[a], maps[b])])
    return {"spearman_mean": rho.mean(), "spearman_median": float(np.median(rho)),
            "spearman_max": rho.max(), "spearman_min": rho.min(),
            "top10_overlap_mean": top.mean(), "top10_overlap_max": top.max(),
            "share_pairs_rho_ge_0.999": float((rho >= 0.999).mean())}

def attribute(ms, batch, chunk=25):
    out = {k: [] for k in ms}
    for s in range(0, batch.probes.shape[0], chunk):
        sub = AttributionBatch(batch.model, batch.probes[s:s+chunk], batch.partner_embeddings[s:s+chunk],
                               batch.pair_ids[s:s+chunk], None, 0)
        for k, m in ms.items():
            out[k].append(m.attribute(sub))
    return {k: np.concatenate(v) for k, v in out.items()}

result = {}
model = load_model("synthetic_inception")
source = SyntheticPairSource(world_seed=0, n_pairs=n_pairs, genuine_fraction=0.5,
                             first_identity=1000, sampling_seed=20261125)
pairs = source.pairs()
a = [source.load_image(p.image_a) for p in pairs]
b = [source.load_image(p.image_b) for p in pairs]
probes = torch.from_numpy(np.stack([x.image for x in a]))
masks = np.stack([x.identity_mask for x in a])
with torch.no_grad():
    partners = model.embed(torch.from_numpy(np.stack([x.image for x in b])))
batch = AttributionBatch(model, probes, partners, tuple(p.pair_id for p in pairs), masks, 0)
ms = {**methods("block2"), **methods("block1"), "saliency": Saliency("s")}
maps = attribute(ms, batch)
quality = {}
for k, m in maps.items():
    q = [map_quality(x, y) for x, y in zip(m, masks)]
    flat = np.ptp(m.reshape(len(m), -1), axis=1) == 0
    quality[k] = {"roc_auc_mean": float(np.mean([x.roc_auc for x in q])),
                  "rank_accuracy_mean": float(np.mean([x.rank_accuracy for x in q])),
                  "flat_map_share": float(flat.mean())}
result["synthetic_inception_quality"] = quality
result["synthetic_inception_distinctness"] = {
    f"{x} vs {y}": compare(maps, x, y) for blk in ("block2", "block1") for x, y in [
        (f"ba_cam@{blk}", f"layer_cam@{blk}"), (f"ba_cam@{blk}", f"grad_cam@{blk}"),
        (f"ba_cam@{blk}", f"ba_cam_uniform@{blk}"), (f"grad_cam@{blk}", f"layer_cam@{blk}")]}
result["n_pairs"] = n_pairs
if n_face:
    fm = load_model("facenet_random")
    g = torch_generator(0, "measure_cam", "facenet")
    x = torch.rand(n_face, 3, 160, 160, generator=g)
    with torch.no_grad():
        p = fm.embed(torch.rand(n_face, 3, 160, 160, generator=g))
    fb = AttributionBatch(fm, x, p, tuple(str(i) for i in range(n_face)), None, 0)
    dist = {}
    for blk in ("repeat_1.4", "repeat_2.9", "block8"):
        fmaps = attribute(methods(blk), fb, chunk=4)
        for u, v in [(f"ba_cam@{blk}", f"layer_cam@{blk}"), (f"ba_cam@{blk}", f"grad_cam@{blk}"),
                     (f"ba_cam@{blk}", f"ba_cam_uniform@{blk}")]:
            dist[f"{u} vs {v}"] = compare(fmaps, u, v)
    result["facenet_random_distinctness"] = dist
    result["n_facenet_pairs"] = n_face
print(json.dumps(result, indent=1, default=float))
