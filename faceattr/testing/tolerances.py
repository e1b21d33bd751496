"""The tolerances of the component checks, each with its derivation.

They are stated once, here, so a check of a user's component and the test of a built-in use the
same number for the same reason.
"""

from __future__ import annotations

import torch

from faceattr.falsification.regions import ATOL_CONSTANT_MAP

__all__ = ["ATOL_CONSTANT_MAP", "ATOL_COPY_NORMALISED", "ATOL_EMBEDDING_BATCH", "GRAD_NORM_MIN",
           "RHO_COPY", "RTOL_BATCH_MAP", "atol_unit_norm"]

RTOL_BATCH_MAP: float = 1e-3
"""Largest per-pair map difference between a pair attributed alone and inside a batch,
relative to the largest ``|value|`` of its map alone.

A method's per-pair map is computed from that pair's rows only (per-pair baselines, per-pair
random streams, eval-mode BatchNorm), so batching can change only the floating-point reduction
order inside CPU kernels whose blocking depends on the batch size. For float32 a sum of ``k``
terms carries a relative rounding error up to about ``k * eps32 = k * 1.2e-7``; the longest
reductions of the models the built-ins are tested on are the synthetic CNN's linear layer
(``k = 2048``) and conv4 (``k = 96 * 9 = 864``), so ~2.5e-4 relative per layer in the worst
case, and the observed error is far below (random-walk rounding: ~5e-6 for every built-in). 1e-3
of the map's scale covers the worst case with headroom and is still 1000x below any difference
between methods. The same bound is the smallest map change that counts as a change (partner
dependence): anything smaller cannot be told apart from batching noise.
"""

RHO_COPY: float = 0.999
"""A method whose maps have Spearman rank correlation >= this with a built-in's, on every pair,
ranks pixels as that built-in does: it is a copy (PITFALLS.md #20).

With ``n`` pixels, ``rho = 1 - 6 sum(d^2) / (n (n^2 - 1))``; on the 16 x 16 check images
``rho >= 0.999`` allows a root-mean-square rank displacement of ``sqrt(0.001 (n^2 - 1) / 6)``
~= 3.3 ranks of 256, so the top and bottom q-fraction regions the falsification test uses are
nearly identical and no test could tell the two methods apart. The closest two distinct
built-ins on the check inputs (integrated_gradients and geodesic_ig) reach 0.995.
"""

ATOL_COPY_NORMALISED: float = 1e-3
"""Two maps that agree within this after min-max normalisation, on every pair, are one map at
two scales: 1e-3 of the range is :data:`RTOL_BATCH_MAP`, the float noise of one method."""

ATOL_EMBEDDING_BATCH: float = 1e-5
"""Largest ``|difference|`` of an embedding component between an image embedded alone and
inside a batch (or embedded twice); also the smallest difference between the embeddings of two
different images that counts as the model seeing its input.

Components of an L2-normalised embedding lie in [-1, 1], so float32 rounding of one value is
``eps32 / 2 = 6e-8``. A reduction of ``k`` terms reordered by a batch-size dependent kernel moves
its result by about ``sqrt(k) * eps32`` (random-walk rounding): ``~5e-6`` for ``k = 2048``
(the synthetic CNN's linear layer). 1e-5 (84 ulps of 1.0) covers it; the observed difference
for the synthetic CNN and the tiny check model is one ulp (1.2e-7).
"""

GRAD_NORM_MIN: float = 1e-6
"""Smallest acceptable L2 norm of the gradient of the verification score w.r.t. the probe.
The research code's constant target had norms near 1e-11 (float32 rounding of a constant); a
real cosine score has norms many orders larger (see
:func:`faceattr.attribution.target.target_sanity`)."""


def atol_unit_norm(dim: int, dtype: torch.dtype) -> float:
    """Largest ``| ||e|| - 1 |`` of an embedding L2-normalised in ``dtype``: ``dim * eps``.

    Computing ``||x||`` sums ``dim`` squares, whose rounding is at most ``dim * eps`` relative
    in the worst case (``sqrt(dim) * eps`` typically), and the division adds ``eps / 2`` per
    component; ``dim * eps`` bounds both (1.9e-6 for 16 float32 dimensions, 1.5e-5 for 128).

    Parameters
    ----------
    dim : int
        Embedding dimension ``D``.
    dtype : torch.dtype
        Floating dtype of the embedding.
    """
    return max(dim, 1) * float(torch.finfo(dtype).eps)
