"""Known-answer checks of a model on the synthetic world: verification AUC and masking control.

Held-out identities (``>= 1000``, never seen in training) give balanced genuine and impostor
pairs; the ROC AUC is computed from ranks (Mann-Whitney U). The *masking control* replaces the
identity-mask pixels of held-out images with the image mean and measures the geodesic drift
``arccos(<f(x), f(x')>)``; the reference replaces the same number of pixels at random positions
outside the (dilated) identity mask. Identity masking must move embeddings far more.
"""

from __future__ import annotations

import numpy as np
import torch
from numpy.typing import NDArray
from scipy import ndimage, stats

from faceattr.data.synthetic import check_difficulty, synthetic_face
from faceattr.models.base import VerificationModel, geodesic_distance_rad, verification_score
from faceattr.rng import numpy_generator

__all__ = ["HELD_OUT_IDENTITY_START", "evaluate_synthetic_model", "rank_auc"]

HELD_OUT_IDENTITY_START: int = 1000
"""First held-out identity; training uses identities below it (0..199)."""

_BATCH = 256
_BACKGROUND_MARGIN_PX = 2  # background pixels are drawn at least this far from the mask


def rank_auc(genuine: NDArray[np.float64], impostor: NDArray[np.float64]) -> float:
    """ROC AUC of scores (genuine higher is better) by the rank-sum formula, ties averaged.

    Parameters
    ----------
    genuine, impostor : numpy.ndarray
        1-D score arrays, each non-empty.

    Returns
    -------
    float
        ``P(s_genuine > s_impostor) + 0.5 * P(tie)``.
    """
    if genuine.size == 0 or impostor.size == 0:
        raise ValueError("rank_auc needs at least one genuine and one impostor score")
    ranks = stats.rankdata(np.concatenate([genuine, impostor]))
    n_g, n_i = genuine.size, impostor.size
    u_stat = float(ranks[:n_g].sum()) - n_g * (n_g + 1) / 2.0
    return u_stat / (n_g * n_i)


def _embed(model: VerificationModel, images: NDArray[np.float32]) -> torch.Tensor:
    chunks = []
    with torch.no_grad():
        for start in range(0, images.shape[0], _BATCH):
            chunks.append(model.embed(torch.from_numpy(images[start:start + _BATCH])))
    return torch.cat(chunks)


def _fill_mean(image: NDArray[np.float32], where: NDArray[np.bool_]) -> NDArray[np.float32]:
    out = image.copy()
    mean = image.reshape(3, -1).mean(axis=1)
    out[:, where] = mean[:, None]
    return out


def evaluate_synthetic_model(model: VerificationModel, *, world_seed: int, n_pairs: int,
                             n_identities: int = 100, difficulty: int = 0) -> dict[str, float]:
    """Measure held-out verification AUC and the identity-vs-background masking control.

    Parameters
    ----------
    model : VerificationModel
        The model to evaluate (used through ``embed`` only, without gradients).
    world_seed : int
        Seed of the synthetic world the model was trained on.
    n_pairs : int
        Number of genuine pairs, and of impostor pairs (balanced), and of masked images.
    n_identities : int
        Held-out identities used: ``1000 .. 1000 + n_identities - 1``.
    difficulty : int
        Difficulty level of the rendered images (:data:`faceattr.data.synthetic.DIFFICULTY_LEVELS`;
        0: the original world).

    Returns
    -------
    dict of str to float
        ``auc``, ``n_genuine``, ``n_impostor``, ``genuine_angle_mean_rad``,
        ``impostor_angle_mean_rad``, ``identity_mask_drift_mean_rad``,
        ``background_drift_mean_rad``, ``drift_ratio`` (identity / background),
        ``identity_drift_exceeds_background_frac`` (per image) and ``mask_coverage_mean``.
    """
    if n_pairs < 1 or n_identities < 2:
        raise ValueError(f"need n_pairs >= 1 and n_identities >= 2, got {n_pairs}, "
                         f"{n_identities}")
    check_difficulty(difficulty)
    anchors, genuine_partners, impostor_partners, anchor_masks = [], [], [], []
    for k in range(n_pairs):
        identity = HELD_OUT_IDENTITY_START + k % n_identities
        view = 2 * (k // n_identities)
        offset = int(numpy_generator(world_seed, "synthetic_eval", "impostor", k)
                     .integers(1, n_identities))
        other = HELD_OUT_IDENTITY_START + (k % n_identities + offset) % n_identities
        anchor = synthetic_face(world_seed, identity, view, difficulty)
        anchors.append(anchor.image)
        anchor_masks.append(anchor.identity_mask)
        genuine_partners.append(synthetic_face(world_seed, identity, view + 1, difficulty).image)
        impostor_partners.append(synthetic_face(world_seed, other, view + 1, difficulty).image)

    # masking control on the anchors
    identity_masked, background_masked = [], []
    for k, (image, mask) in enumerate(zip(anchors, anchor_masks, strict=True)):
        identity_masked.append(_fill_mean(image, mask))
        near = ndimage.binary_dilation(mask, iterations=_BACKGROUND_MARGIN_PX)
        candidates = np.flatnonzero(~near)
        rng = numpy_generator(world_seed, "synthetic_eval", "background_pixels", k)
        chosen = rng.choice(candidates, size=int(mask.sum()), replace=False)
        background = np.zeros(mask.size, dtype=np.bool_)
        background[chosen] = True
        background_masked.append(_fill_mean(image, background.reshape(mask.shape)))

    emb = _embed(model, np.stack(anchors))
    emb_gen = _embed(model, np.stack(genuine_partners))
    emb_imp = _embed(model, np.stack(impostor_partners))
    emb_id = _embed(model, np.stack(identity_masked))
    emb_bg = _embed(model, np.stack(background_masked))

    s_gen = verification_score(emb, emb_gen).double().numpy()
    s_imp = verification_score(emb, emb_imp).double().numpy()
    drift_id = geodesic_distance_rad(emb, emb_id).double().numpy()
    drift_bg = geodesic_distance_rad(emb, emb_bg).double().numpy()
    return {
        "auc": rank_auc(s_gen, s_imp),
        "n_genuine": float(s_gen.size),
        "n_impostor": float(s_imp.size),
        "genuine_angle_mean_rad": float(np.arccos(np.clip(s_gen, -1.0, 1.0)).mean()),
        "impostor_angle_mean_rad": float(np.arccos(np.clip(s_imp, -1.0, 1.0)).mean()),
        "identity_mask_drift_mean_rad": float(drift_id.mean()),
        "background_drift_mean_rad": float(drift_bg.mean()),
        "drift_ratio": float(drift_id.mean() / drift_bg.mean()),
        "identity_drift_exceeds_background_frac": float((drift_id > drift_bg).mean()),
        "mask_coverage_mean": float(np.mean([m.mean() for m in anchor_masks])),
    }
