"""Benchmarks of the harness against the hardware's limit (issue #11).

``python -m faceattr.bench [--quick] [--models ...] [--out reports/bench]`` measures, in one
run and as ratios of interleaved timings:

(a) falsification-engine throughput vs the model's raw batched forward
    (:mod:`faceattr.bench.engine`);
(b) the engine vs the research code's one-forward-per-counterfactual loop on identical work
    (:mod:`faceattr.bench.reference`);
(c) Integrated Gradients and SmoothGrad vs raw batched forward + backward
    (:mod:`faceattr.bench.attribution`);
(d) peak RSS of the default validation (:mod:`faceattr.bench.memory`);
(e) how engine time grows with ``n_pairs`` and ``K`` (:mod:`faceattr.bench.scaling`).
"""

from faceattr.bench.suite import (
    DEFAULT_MODELS,
    BenchConfig,
    ModelSizes,
    full_config,
    markdown_table,
    quick_config,
    run_benchmarks,
)

__all__ = ["DEFAULT_MODELS", "BenchConfig", "ModelSizes", "full_config", "markdown_table",
           "quick_config", "run_benchmarks"]
