"""The counterfactual falsification test (Theorem 3.5): regions, counterfactuals, verdicts."""

from faceattr.falsification.engine import FalsificationSettings, PairInputs, falsify_maps
from faceattr.falsification.regions import Regions, TrivialMap, quantile_regions
from faceattr.falsification.verdicts import DriftSummary, summarise_drifts

__all__ = ["DriftSummary", "FalsificationSettings", "PairInputs", "Regions", "TrivialMap",
           "falsify_maps", "quantile_regions", "summarise_drifts"]
