"""Model-parameter randomisation test (Adebayo et al. 2018): layers, map similarities, stage."""

from faceattr.randomisation.layers import (
    cascading_steps,
    randomisable_layers,
    randomise_layers,
    reinitialise_module,
)
from faceattr.randomisation.similarity import (
    METRICS,
    Metric,
    map_similarity,
    spearman_abs,
    ssim,
    topk_intersection,
)
from faceattr.randomisation.stage import (
    RANDOMISATION_FILE,
    MethodCurves,
    Order,
    RandomisationResult,
    RandomisationStep,
    StepSimilarity,
    load_randomisation,
    run_randomisation,
    write_randomisation,
)

__all__ = ["METRICS", "RANDOMISATION_FILE", "MethodCurves", "Metric", "Order",
           "RandomisationResult", "RandomisationStep", "StepSimilarity", "cascading_steps",
           "load_randomisation", "map_similarity", "randomisable_layers", "randomise_layers",
           "reinitialise_module", "run_randomisation", "spearman_abs", "ssim",
           "topk_intersection", "write_randomisation"]
