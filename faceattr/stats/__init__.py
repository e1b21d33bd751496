"""faceattr statistics: thin typed wrappers over statsmodels and scipy (never imports torch).

Every option is explicit and keyword-only; results are frozen, self-validating records whose
``to_json()`` never emits NaN (an undefined statistic is ``None`` with ``undefined_reason``).
"""

from __future__ import annotations

from faceattr.stats.effects import cohens_h
from faceattr.stats.equivalence import (
    EquivalenceResult,
    tango_score_z,
    tost_paired,
    tost_unpaired,
    tost_unpaired_counts,
)
from faceattr.stats.means import MeanInterval, MeanMethod, mean_interval
from faceattr.stats.multiplicity import AdjustedFamily, MultiplicityMethod, adjust_family
from faceattr.stats.paired import (
    CochranQResult,
    McNemarResult,
    WilcoxonResult,
    align_pairs,
    paired_cochran_q,
    paired_mcnemar,
    paired_mean_difference,
    paired_risk_difference,
    paired_table,
    paired_wilcoxon,
)
from faceattr.stats.power import (
    achieved_power_paired,
    achieved_power_paired_table,
    achieved_power_unpaired,
    pairs_needed_paired,
    pairs_needed_unpaired,
)
from faceattr.stats.proportions import (
    ProportionBound,
    ProportionInterval,
    ProportionMethod,
    proportion_bound,
    proportion_from_outcomes,
    proportion_interval,
)
from faceattr.stats.records import DifferenceInterval, PairedTable, TestResult
from faceattr.stats.unpaired import (
    UnpairedComparison,
    farrington_manning_z,
    newcombe_unpaired_interval,
    unpaired_comparison,
    unpaired_comparison_counts,
)

__all__ = [
    "AdjustedFamily",
    "CochranQResult",
    "DifferenceInterval",
    "EquivalenceResult",
    "McNemarResult",
    "MeanInterval",
    "MeanMethod",
    "MultiplicityMethod",
    "PairedTable",
    "ProportionBound",
    "ProportionInterval",
    "ProportionMethod",
    "TestResult",
    "UnpairedComparison",
    "WilcoxonResult",
    "achieved_power_paired",
    "achieved_power_paired_table",
    "achieved_power_unpaired",
    "adjust_family",
    "align_pairs",
    "cohens_h",
    "farrington_manning_z",
    "mean_interval",
    "newcombe_unpaired_interval",
    "paired_cochran_q",
    "paired_mcnemar",
    "paired_mean_difference",
    "paired_risk_difference",
    "paired_table",
    "paired_wilcoxon",
    "pairs_needed_paired",
    "pairs_needed_unpaired",
    "proportion_bound",
    "proportion_from_outcomes",
    "proportion_interval",
    "tango_score_z",
    "tost_paired",
    "tost_unpaired",
    "tost_unpaired_counts",
    "unpaired_comparison",
    "unpaired_comparison_counts",
]
