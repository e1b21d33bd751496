"""The protocol reference, generated from the readers themselves (``faceattr protocol-reference``).

Every key of every protocol table and of every registered component (methods, pair sources,
model files, claim kinds) with its type, default, allowed values or bounds, unit and one-line
doc. Nothing here is written by hand: the protocol's own tables are listed by parsing two
maximal protocols while recording each key the parser reads; components are listed by running
their parameter readers on a :class:`~faceattr.config.RecordingReader`; a method's units and
docs come from its declared parameters (``Params``). ``PROTOCOL.md`` in the repository is this
module's output, and a test keeps it so.
"""

from __future__ import annotations

import contextlib
import tomllib
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from faceattr.attribution.base import AttributionMethod
from faceattr.config import RecordingReader, TableReader

__all__ = ["protocol_reference", "reference_tables"]

_MAXIMAL = """
[protocol]
name = "reference"
description = "every table"
seed = 0
alpha = 0.05
interval_method = "wilson"

[data]
source = "synthetic"
world_seed = 0
n_pairs = 10
genuine_fraction = 0.5
first_identity = 0

[model]
name = "synthetic_cnn"
min_auc = 0.9

[falsification]
{regions}
k_per_region = 8
fill = "blur"
blur_sigma_px = 2.0
perturbation_sigma = 0.02
verdict = "simple"
distance = "geodesic"
tau_high = 0.7
tau_low = 0.45
epsilon = 0.1
test_alpha = 0.05

[execution]
pairs_per_batch = 8
forward_chunk = 64

[randomisation]
n_pairs = 4

[determinism]
n_pairs = 2

[partner_sensitivity]
n_pairs = 2
metric = "topk"
topk_frac = 0.1

[baseline]
path = "reports/previous-run"
margin = 0.05

[artefacts]
n_pairs = 4
methods = ["saliency"]

[metric_validity]
n_pairs = 4

[strata]

[[strata.covariates]]
name = "scale"
cuts = [0.97, 1.03]

[[methods]]
method = "saliency"
"""

#: Unit and one-line doc of each protocol-level key (the components document their own).
_DOCS: dict[tuple[str, str], tuple[str, str]] = {
    ("[protocol]", "name"): ("", "run folder prefix: letters, digits, '.', '_', '-'"),
    ("[protocol]", "description"): ("", "what the study claims"),
    ("[protocol]", "seed"): ("", "master seed of every keyed random stream"),
    ("[protocol]", "alpha"): ("", "level of the claims' intervals and tests"),
    ("[protocol]", "interval_method"): ("", "binomial interval of every falsification rate"),
    ("[data]", "source"): ("", "pair source: a built-in (below), an entry point or an import "
                               "path; its keys are listed under Pair sources"),
    ("[model]", "min_auc"): ("", "model gate: verification ROC AUC the model must reach"),
    ("[model]", "target_grad_norm_min"): ("", "target sanity: smallest gradient norm of the "
                                              "explained score"),
    ("[model]", "name"): ("", "a built-in model, an entry point or an import path of a "
                              "loader(weights_path)"),
    ("[model]", "weights"): ("", "weights file (relative to the protocol's folder)"),
    ("[execution]", "pairs_per_batch"): ("pairs", "pairs per batch (never changes a result)"),
    ("[execution]", "forward_chunk"): ("images", "largest forward batch (never changes a "
                                                 "result)"),
    ("[execution]", "device"): ("", "cpu, cuda, cuda:N or mps: where forwards and attributions "
                                    "run (part of the run identity, not of the science)"),
    ("[execution]", "memory_format"): ("", "contiguous or channels_last: the tensor layout of "
                                           "the forward (a CPU speed option; part of the run "
                                           "identity, results equal within tolerance)"),
    ("[falsification]", "thresholds"): ("", "calibrated (written by `faceattr calibrate`) or "
                                            "fixed (needs thresholds_reason)"),
    ("[falsification]", "thresholds_reason"): ("", "why the thresholds are fixed rather than "
                                                   "calibrated"),
    ("[falsification]", "regions"): ("", "quantile: area-matched top/bottom q; threshold: "
                                         "min-max normalised thresholds"),
    ("[falsification]", "q_frac"): ("fraction of pixels", "size of S_high and S_low"),
    ("[falsification]", "k_per_region"): ("counterfactuals", "draws per region (Theorem 3.7)"),
    ("[falsification]", "fill"): ("", "what replaces a region"),
    ("[falsification]", "blur_sigma_px"): ("px", "Gaussian sigma of the blur fill"),
    ("[falsification]", "distance"): ("", "drift measure: geodesic angle or score drop"),
    ("[falsification]", "tau_high"): ("rad", "Theorem 3.5: the high region's drift must exceed"),
    ("[falsification]", "tau_low"): ("rad", "Theorem 3.5: the low region's drift must stay "
                                            "below"),
    ("[falsification]", "epsilon"): ("rad", "Theorem 3.5: tau_high - tau_low >= epsilon"),
    ("[falsification]", "precision_eps_rad"): ("rad", "declared precision of a mean drift "
                                                      "(Hoeffding check of K)"),
    ("[falsification]", "precision_delta"): ("", "failure probability of that precision"),
    ("[falsification]", "perturbation_sigma"): ("unit intensity", "SD of the noise added to "
                                                                  "each fill"),
    ("[falsification]", "verdict"): ("", "primary verdict: simple (margin <= 0) or theorem"),
    ("[falsification]", "test_alpha"): ("", "level of Theorem 3.5's one-sided tests"),
    ("[falsification]", "theta_high"): ("", "threshold regions: S_high = {phi > theta_high}"),
    ("[falsification]", "theta_low"): ("", "threshold regions: S_low = {phi < theta_low}"),
    ("[falsification]", "area_ratio_min"): ("", "smallest acceptable |S_high|/|S_low|"),
    ("[falsification]", "area_ratio_max"): ("", "largest acceptable |S_high|/|S_low|"),
    ("[randomisation]", "n_pairs"): ("pairs", "pairs of the Adebayo randomisation test"),
    ("[randomisation]", "topk_frac"): ("fraction of pixels", "top-k overlap of the maps"),
    ("[randomisation]", "completeness_n_steps"): ("steps", "IG completeness trend grid"),
    ("[randomisation]", "repaired_methods"): ("", "methods of sMPRT and eMPRT (Hedstrom et al. "
                                                  "2023); none: not run"),
    ("[randomisation]", "smprt_n_samples"): ("samples", "sMPRT: maps averaged per probe (last "
                                                        "noise-free)"),
    ("[randomisation]", "smprt_noise_frac"): ("fraction of the probe's range",
                                              "sMPRT: SD of the input noise"),
    ("[randomisation]", "layer_order"): ("", "sMPRT cascade: bottom_up or top_down"),
    ("[randomisation]", "smprt_abs"): ("", "sMPRT: rank abs(smoothed map) (else signed)"),
    ("[randomisation]", "emprt_abs"): ("", "eMPRT: entropy of abs(map) (else signed)"),
    ("[randomisation]", "emprt_n_bins"): ("bins", "eMPRT: equal-width histogram bins"),
    ("[determinism]", "n_pairs"): ("pairs", "pairs re-run in fresh processes"),
    ("[partner_sensitivity]", "n_pairs"): ("pairs", "genuine pairs re-explained against a "
                                                    "random impostor partner"),
    ("[partner_sensitivity]", "metric"): ("", "similarity of a pair's genuine- and "
                                              "impostor-partner maps"),
    ("[partner_sensitivity]", "topk_frac"): ("fraction of pixels", "top-k overlap of the maps"),
    ("[baseline]", "path"): ("", "run folder to compare with (relative to the protocol)"),
    ("[baseline]", "margin"): ("", "equivalence margin on FR differences"),
    ("[baseline]", "alpha"): ("", "level of McNemar and each TOST test"),
    ("[artefacts]", "fills"): ("", "fills the shape/blur artefact controls run under"),
    ("[artefacts]", "methods"): ("", "methods whose S_high is moved"),
    ("[artefacts]", "n_pairs"): ("pairs", "pairs of the artefact controls"),
    ("[artefacts]", "max_overlap_frac"): ("", "largest overlap of the moved and the original "
                                              "S_high"),
    ("[artefacts]", "blur_sigma_px"): ("px", "blur of the blurred random map"),
    ("[strata]", "methods"): ("", "methods analysed (default: every method)"),
    ("[strata]", "outcomes"): ("", "falsified (the verdict below, ITT) and/or trivial"),
    ("[strata]", "verdict"): ("", "which verdict 'falsified' is: the primary one, simple or "
                                  "theorem"),
    ("[strata]", "alpha"): ("", "family-wise level (Holm in each family of tests)"),
    ("[strata]", "min_stratum_pairs"): ("pairs", "smaller strata are shown, not tested"),
    ("[strata]", "n_resamples"): ("", "Monte Carlo resamples (Freeman-Halton, permutation)"),
    ("[strata] [[covariates]] #1", "name"): ("", "a covariate of faceattr.data.covariates; "
                                                 "continuous ones need cuts = [...] "
                                                 "(strictly increasing, declared up front)"),
    ("[metric_validity]", "n_pairs"): ("pairs", "pairs (spread over the run) whose metrics are "
                                                "computed for every truth_tracking family's maps"),
    ("[metric_validity]", "metrics"): ("", "evaluation metrics ranked against the truth"),
    ("[metric_validity]", "n_steps"): ("steps", "deletion / insertion steps"),
    ("[metric_validity]", "fill"): ("", "deletion and faithfulness fill (default: the "
                                        "falsification fill; mean when that is nli)"),
}

_REGIONS = ('regions = "quantile"\nq_frac = 0.1',
            'regions = "threshold"\ntheta_high = 0.8\ntheta_low = 0.2\narea_ratio_min = 0.5\n'
            'area_ratio_max = 2.0')
_GETTERS = ("text", "integer", "number", "fraction", "texts", "integers", "boolean")


@contextlib.contextmanager
def _recording_reads(out: dict[str, dict[str, dict[str, Any]]]) -> Iterator[None]:
    """Record every key a real :class:`TableReader` reads, by table, while parsing."""
    originals = {name: getattr(TableReader, name) for name in _GETTERS}

    def wrap(name: str, original: Callable[..., Any]) -> Callable[..., Any]:
        def spy(self: TableReader, key: str, **kwargs: Any) -> Any:
            table = self.where.split(" ", 1)[1] if " " in self.where else "(top level)"
            probe = RecordingReader(self.where)
            getattr(probe, name)(key, **kwargs)
            out.setdefault(table, {}).setdefault(key, probe.keys[0])
            return original(self, key, **kwargs)
        return spy

    try:
        for name, original in originals.items():
            setattr(TableReader, name, wrap(name, original))
        yield
    finally:
        for name, original in originals.items():
            setattr(TableReader, name, original)


def _protocol_tables() -> dict[str, dict[str, dict[str, Any]]]:
    from faceattr.protocol import parse_protocol

    tables: dict[str, dict[str, dict[str, Any]]] = {}
    with _recording_reads(tables):
        for regions in _REGIONS:
            parse_protocol(tomllib.loads(_MAXIMAL.format(regions=regions)), "reference.toml")
    for name in ("[[methods]] #1", "[[claims]] #1"):
        tables.pop(name, None)  # documented per component below
    tables["[data]"] = {"source": tables["[data]"]["source"]}  # each source: below
    for table, keys in tables.items():
        for key, entry in keys.items():
            entry["unit"], entry["doc"] = _DOCS.get((table, key), ("", ""))
    return tables


def _method_rows(cls: type[AttributionMethod]) -> list[dict[str, Any]]:
    rows: list[dict[str, Any]] = cls.parameter_reference()
    return rows


def _component_tables() -> dict[str, dict[str, list[dict[str, Any]]]]:
    from faceattr.attribution.registry import METHOD_REGISTRY
    from faceattr.claims.registry import CLAIM_REGISTRY
    from faceattr.data.sources import SOURCE_REGISTRY

    methods = {name: _method_rows(cls) for name, cls in METHOD_REGISTRY.table().items()}
    sources: dict[str, list[dict[str, Any]]] = {}
    for name, kind in SOURCE_REGISTRY.table().items():
        reader = RecordingReader(f"[data] source = {name!r}")
        with contextlib.suppress(Exception):
            kind.read(reader, Path())
        sources[name] = reader.keys
    claims: dict[str, list[dict[str, Any]]] = {}
    for name, claim in CLAIM_REGISTRY.table().items():
        reader = RecordingReader(f"[[claims]] kind = {name!r}")
        with contextlib.suppress(Exception):
            claim.read(reader, {"<method id>"})
        claims[name] = reader.keys
    files = RecordingReader("[model] format = ...")
    with contextlib.suppress(Exception):
        from faceattr.models.files import read_model_file_spec

        read_model_file_spec(files, Path())
    return {"methods": methods, "sources": sources, "claims": claims,
            "model files": {"[model] with format": files.keys}}


def reference_tables() -> dict[str, Any]:
    """Every documented key: protocol tables and components (JSON-ready)."""
    return {"protocol": _protocol_tables(), **_component_tables()}


def _row(entry: dict[str, Any]) -> str:
    unit = entry.get("unit") or ""
    doc = entry.get("doc") or ""
    return (f"| `{entry['key']}` | {entry['type']} | {entry['default']} | "
            f"{entry.get('allowed') or ''} | {unit} | {doc} |")


_HEADER = "| key | type | default | allowed | unit | doc |\n|---|---|---|---|---|---|"


def protocol_reference() -> str:
    """The reference as Markdown (``PROTOCOL.md``)."""
    tables = reference_tables()
    lines = ["# Protocol reference", "",
             "Generated by `faceattr protocol-reference` from faceattr's own readers; do not "
             "edit by hand.", "", "## Protocol tables", ""]
    for table, keys in tables["protocol"].items():
        lines += [f"### `{table}`", "", _HEADER, *(_row(k) for k in keys.values()), ""]
    for section, title in (("methods", "Attribution methods (`[[methods]] method = ...`)"),
                           ("sources", "Pair sources (`[data] source = ...`)"),
                           ("model files", "Model files (`[model] format = ...`)"),
                           ("claims", "Claim kinds (`[[claims]] kind = ...`)")):
        lines += [f"## {title}", ""]
        for name, keys in tables[section].items():
            lines += [f"### `{name}`", ""]
            lines += [_HEADER, *(_row(k) for k in keys), ""] if keys else \
                ["No parameters.", ""]
    return "\n".join(lines).rstrip() + "\n"
