# sMPRT and eMPRT (Hedström et al. 2023; faceattr/randomisation/repaired.py): their kernels,
# records, protocol keys and claims (planted defects in both directions), and Quantus 0.6's
# SmoothMPRT / EfficientMPRT as an independent reference on identical inputs.
#
# Identical inputs for Quantus: a BN-free tiny network whose weight layers re-initialise, when
# Quantus calls reset_parameters(), from faceattr's own keyed generator
# (torch_generator(seed, model, "randomise", layer)), so Quantus' bottom-up cascade and
# faceattr's are the same models; Quantus' torch.manual_seed is isolated in fork_rng.
# SmoothMPRT's noise comes from numpy's legacy global RNG: the test seeds it for the call,
# restores it, and replays the same draws (in Quantus' order: the reference maps, the "original"
# self-comparison, then one set per layer) into faceattr's kernel. Quantus' SmoothMPRT always
# explains with quantus.explain (here method "Saliency": captum Saliency, |grad| summed over
# channels = faceattr's saliency). Exact differences, documented: Quantus draws fresh noise for
# every model state (faceattr: one keyed set for all states), normalises the smoothed maps by
# their RMS (inert for a rank correlation) and reports eMPRT as ratio - 1.
from __future__ import annotations

import contextlib
import dataclasses
import importlib
import math
import warnings
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType
from typing import Any

import numpy as np
import pytest
import torch
from torch import nn

from faceattr.attribution import AttributionBatch, build_method
from faceattr.claims import ClaimResult, ClaimSpec, RunArtefacts, evaluate_claim
from faceattr.claims.registry import parse_claim
from faceattr.config import ProtocolError
from faceattr.models.base import VerificationModel
from faceattr.models.synthetic_cnn import load_synthetic_model
from faceattr.randomisation.layers import randomise_layers, reinitialise_module
from faceattr.randomisation.repaired import (
    RepairedCurves,
    RepairedResult,
    RepairedSettings,
    SmprtStep,
    discrete_entropy,
    layer_steps,
    smoothed_maps,
    smprt_noise,
    smprt_similarity,
)
from faceattr.randomisation.stage import RandomisationResult, run_randomisation
from faceattr.rng import numpy_generator, torch_generator
from tests.helpers import records, run
from tests.randomisation.common import Broken, EdgeMap, hand_result, synthetic_pairs

SETTINGS = RepairedSettings(methods=("broken", "edge", "random", "saliency"), n_samples=4,
                            noise_frac=0.1, layer_order="bottom_up", smprt_abs=True,
                            emprt_abs=False, n_bins=100)


# --- kernels -------------------------------------------------------------------------------

def test_discrete_entropy_known_values():
    assert discrete_entropy(np.full((8, 8), 3.0), 100) == 0.0
    uniform = np.arange(100, dtype=np.float64).reshape(10, 10)
    assert discrete_entropy(uniform, 100) == pytest.approx(math.log(100), rel=1e-12)
    assert discrete_entropy(uniform, 10) == pytest.approx(math.log(10), rel=1e-12)
    # two equal halves: log 2
    assert discrete_entropy(np.array([0.0] * 5 + [1.0] * 5), 100) == pytest.approx(math.log(2))
    # a positive rescaling leaves it unchanged (why normalisation is no setting)
    values = numpy_generator(0, "entropy").random((16, 16))
    assert discrete_entropy(7.5 * values, 100) == pytest.approx(discrete_entropy(values, 100),
                                                                rel=1e-12)
    with pytest.raises(ValueError, match="non-empty finite"):
        discrete_entropy(np.array([np.nan, 1.0]), 10)


def test_layer_orders():
    layers = ("a", "b", "c")
    assert layer_steps(layers, "bottom_up") == (("a",), ("a", "b"), ("a", "b", "c"))
    assert layer_steps(layers, "top_down") == (("c",), ("c", "b"), ("c", "b", "a"))
    with pytest.raises(ValueError, match="unknown layer order"):
        layer_steps(layers, "sideways")  # type: ignore[arg-type]


def test_smprt_similarity_abs_vs_signed():
    rng = numpy_generator(0, "signed")
    a = rng.standard_normal((12, 12))
    assert smprt_similarity(a, -a, use_abs=True) == pytest.approx(1.0)
    assert smprt_similarity(a, -a, use_abs=False) == pytest.approx(-1.0)
    assert smprt_similarity(a, np.zeros_like(a), use_abs=True) == 0.0


@pytest.fixture(scope="module")
def synthetic() -> dict[str, Any]:
    vmodel = load_synthetic_model()
    data = synthetic_pairs(vmodel, n_pairs=8)
    methods = [build_method("saliency", "saliency", {}, "t"),
               build_method("random", "random", {}, "t"), EdgeMap("edge"), Broken("broken")]
    result = run_randomisation(vmodel, methods, data.batch, partner_images=data.partner_images,
                               seed=1, n_pairs=4, repaired=SETTINGS)
    return {"model": vmodel, "data": data, "result": result}


def test_one_sample_is_the_plain_map_and_noise_is_keyed(synthetic):
    batch = synthetic["data"].batch
    saliency = build_method("saliency", "saliency", {}, "t")
    one = smprt_noise(batch, "saliency", 1)
    assert not one.any()
    np.testing.assert_array_equal(smoothed_maps(saliency, batch, one, 0.1),
                                  saliency.attribute(batch))
    # each pair's noise depends on its pair id only, not on the batch it is in
    noise = smprt_noise(batch, "saliency", 3)
    alone = smprt_noise(dataclasses.replace(batch, probes=batch.probes[2:3],
                                            pair_ids=batch.pair_ids[2:3]), "saliency", 3)
    np.testing.assert_array_equal(noise[2], alone[0])
    assert not noise[:, -1].any()
    assert noise[:, :-1].std() > 0.5
    assert not np.array_equal(noise, smprt_noise(batch, "other", 3))


# --- the stage on the synthetic model -------------------------------------------------------

def test_repaired_values_on_the_synthetic_model(synthetic):
    repaired = synthetic["result"].repaired
    assert repaired.settings == SETTINGS
    random, saliency, edge = (repaired.method(m) for m in ("random", "saliency", "edge"))
    assert repaired.method("broken").error == "RuntimeError: boom"
    for blind in (random, edge):  # model-blind maps: identical after randomisation
        assert blind.full.mean == pytest.approx(1.0)
        assert all(r == pytest.approx(1.0, rel=1e-12) for r in blind.complexity_ratio)
    assert saliency.full.mean < 0.8
    assert min(r for r in saliency.complexity_ratio if r is not None) > 1.0
    assert [s.layers_randomised for s in saliency.smprt] == list(
        layer_steps(synthetic["result"].layers, "bottom_up"))


def test_the_artefact_round_trips_and_version_1_still_loads(synthetic, tmp_path):
    from faceattr.randomisation import load_randomisation, write_randomisation

    result = synthetic["result"]
    write_randomisation(tmp_path, result)
    assert load_randomisation(tmp_path) == result
    row = result.to_json()
    assert row["version"] == 2
    assert row["repaired"]["settings"]["layer_order"] == "bottom_up"
    old = {k: v for k, v in row.items() if k != "repaired"} | {"version": 1}
    assert RandomisationResult.from_json(old).repaired is None
    with pytest.raises(ValueError, match="keys differ"):
        RandomisationResult.from_json(row | {"version": 1})
    with pytest.raises(ValueError, match="version 3 is not 1 or 2"):
        RandomisationResult.from_json(row | {"version": 3})


def test_records_refuse_inconsistent_values():
    step = SmprtStep.of(("a",), [0.5, 0.1])
    good: dict[str, Any] = dict(method_id="m", method_name="m", smoothed_constant=(False, False),
                                smprt=(step,), complexity_before=(2.0, 0.0),
                                complexity_after=(3.0, 1.0), complexity_ratio=(1.5, None),
                                error=None)
    RepairedCurves(**good)
    with pytest.raises(ValueError, match="is not after / before"):
        RepairedCurves(**good | {"complexity_ratio": (1.4, None)})
    with pytest.raises(ValueError, match="is not after / before"):
        RepairedCurves(**good | {"complexity_ratio": (1.5, 0.0)})
    with pytest.raises(ValueError, match="entries"):
        RepairedCurves(**good | {"smoothed_constant": (False,)})
    with pytest.raises(ValueError, match="does not match"):
        SmprtStep(layers_randomised=("a",), per_pair=(0.5,), mean=0.4)
    with pytest.raises(ValueError, match="not the declared"):
        RepairedResult(settings=SETTINGS, methods=(RepairedCurves(**good),))


# --- claims ---------------------------------------------------------------------------------

IDS = ("blind", "sensitive")


def _repaired(smprt: dict[str, list[float]], ratios: dict[str, list[float | None]]
              ) -> RandomisationResult:
    # a hand-built result: the classic curves of hand_result plus repaired values per method
    base = hand_result("blind", [[0.9, 0.9]] * 3, [[0.9, 0.9]] * 3)
    sensitive = dataclasses.replace(base.methods[0], method_id="sensitive",
                                    method_name="sensitive")
    settings = dataclasses.replace(SETTINGS, methods=IDS)
    entries = []
    for m in IDS:
        before = [2.0 if r is not None else 0.0 for r in ratios[m]]
        after = [b * r if r is not None else 1.0 for b, r in zip(before, ratios[m],
                                                                   strict=True)]
        entries.append(RepairedCurves(
            method_id=m, method_name=m, smoothed_constant=(False, False),
            smprt=tuple(SmprtStep.of(s, smprt[m]) for s in layer_steps(base.layers,
                                                                         "bottom_up")),
            complexity_before=tuple(before), complexity_after=tuple(after),
            complexity_ratio=tuple(ratios[m]), error=None))
    return dataclasses.replace(base, methods=(base.methods[0], sensitive),
                               repaired=RepairedResult(settings=settings,
                                                       methods=tuple(entries)))


def _judge(result: RandomisationResult | None, **params: Any) -> ClaimResult:
    spec = ClaimSpec(id="c", kind="randomisation",
                     params=tuple(sorted({"order": "cascading", **params}.items())))
    by_method = {m: records(m, n_falsified=1, n_passed=1) for m in IDS}
    return evaluate_claim(spec, RunArtefacts(
        summary=run(by_method), records=[r for rows in by_method.values() for r in rows],
        claims=(spec,), randomisation=result))


RESULT = _repaired({"blind": [1.0, 0.98], "sensitive": [0.2, 0.4]},
                   {"blind": [1.0, 1.0], "sensitive": [1.5, 2.5]})


def test_emprt_claims_both_directions():
    sensitive = dict(metric="emprt", min_complexity_ratio=1.2)
    verdict = _judge(RESULT, method="sensitive", **sensitive)
    assert verdict.passed
    assert verdict.observed == pytest.approx(2.0)
    assert verdict.comparison == ">="
    assert verdict.threshold == 1.2
    # planted defect: a model-blind map's complexity does not rise
    assert not _judge(RESULT, method="blind", **sensitive).passed
    insensitive = dict(metric="emprt", max_complexity_ratio=1.05, expected_insensitive=True,
                       reason="blind")
    assert _judge(RESULT, method="blind", **insensitive).passed
    verdict = _judge(RESULT, method="sensitive", **insensitive)
    assert not verdict.passed
    assert verdict.detail.startswith("not insensitive: mean eMPRT ratio after 3 layers "
                                     "(bottom_up) = 2.0000 > 1.05")


def test_emprt_undefined_ratios_count_against_the_claim():
    result = _repaired({"blind": [1.0, 1.0], "sensitive": [0.2, 0.4]},
                       {"blind": [1.0, None], "sensitive": [3.0, None]})
    verdict = _judge(result, method="sensitive", metric="emprt", min_complexity_ratio=1.2)
    assert verdict.observed == pytest.approx(1.5)  # the undefined pair counts as ratio 0
    assert "(1 untestable counted as 0)" in verdict.detail
    verdict = _judge(result, method="blind", metric="emprt", max_complexity_ratio=1.05,
                     expected_insensitive=True, reason="r")
    assert not verdict.passed
    assert verdict.detail.startswith("untestable: 1 of 2 maps")


def test_smprt_and_min_similarity_claims_both_directions():
    assert _judge(RESULT, method="sensitive", metric="smprt", max_similarity=0.5).passed
    assert not _judge(RESULT, method="blind", metric="smprt", max_similarity=0.5).passed
    insensitive = dict(metric="smprt", min_similarity=0.9, expected_insensitive=True,
                       reason="r")
    verdict = _judge(RESULT, method="blind", **insensitive)
    assert verdict.passed
    assert verdict.comparison == ">="
    assert verdict.detail.startswith("insensitivity confirmed: mean smprt")
    assert not _judge(RESULT, method="sensitive", **insensitive).passed
    # the classic metric with min_similarity: the same semantics on the cascade
    classic = dict(metric="spearman_abs", min_similarity=0.85, expected_insensitive=True,
                   reason="r")
    assert _judge(RESULT, method="blind", **classic).passed
    assert not _judge(RESULT, method="blind", **classic | {"min_similarity": 0.95}).passed


def test_n_layers_picks_the_partial_cascade():
    result = hand_result("blind", [[0.9, 0.7], [0.6, 0.4], [0.3, 0.1]], [[0.5, 0.5]] * 3)
    verdict = _judge(result, method="blind", metric="spearman_abs", n_layers=1,
                     max_similarity=0.8)
    assert verdict.observed == pytest.approx(0.8)
    assert verdict.passed
    assert verdict.detail.startswith("mean spearman_abs after 1 layers")
    assert _judge(result, method="blind", metric="spearman_abs", n_layers=2,
                  max_similarity=0.5).passed
    too_deep = _judge(result, method="blind", metric="spearman_abs", n_layers=4,
                      max_similarity=0.5)
    assert too_deep.detail == "undefined: n_layers = 4 but the cascade has 3 layers"


def test_missing_repaired_values_fail():
    result = hand_result("blind", [[0.9, 0.9]] * 3, [[0.9, 0.9]] * 3)
    verdict = _judge(result, method="blind", metric="emprt", min_complexity_ratio=1.2)
    assert not verdict.passed
    assert "declare it in [randomisation] repaired_methods" in verdict.detail


def test_claim_keys_are_read_strictly():
    ids = set(IDS)

    def parse(**params: Any) -> Any:
        return parse_claim({"kind": "randomisation", "method": "blind",
                            "order": "cascading", **params}, "t", ids)

    assert parse(metric="emprt", min_complexity_ratio=1.2).id == \
        "randomisation:blind:emprt>=1.2"
    assert parse(metric="spearman_abs", n_layers=2, min_similarity=0.7,
                 expected_insensitive=True, reason="r").id == \
        "randomisation:blind:cascading@2:spearman_abs>=0.7"
    with pytest.raises(ProtocolError, match="unknown key 'max_similarity'"):
        parse(metric="emprt", min_complexity_ratio=1.2, max_similarity=0.5)
    with pytest.raises(ProtocolError, match="must be 'cascading'"):
        parse(metric="smprt", max_similarity=0.5, order="independent")
    with pytest.raises(ProtocolError, match="n_layers = 2 applies only"):
        parse(metric="emprt", min_complexity_ratio=1.2, n_layers=2)
    with pytest.raises(ProtocolError, match="unknown key 'min_similarity'"):
        parse(metric="ssim", max_similarity=0.5, min_similarity=0.2)


def test_protocol_keys(tmp_path):
    from faceattr.protocol import load_protocol

    source = tmp_path / "p.toml"
    text = Path("validation/protocols/synthetic.toml").read_text(encoding="utf-8")
    protocol = load_protocol("validation/protocols/synthetic.toml")
    assert protocol.randomisation is not None
    assert protocol.randomisation.repaired is not None
    assert protocol.randomisation.repaired.layer_order == "bottom_up"
    broken = text.replace('repaired_methods = ["grad_cam", "guided_backprop", '
                          '"guided_grad_cam", "random", "saliency"]', "")
    assert broken != text
    source.write_text(broken, encoding="utf-8")
    with pytest.raises(ProtocolError, match="has no effect without repaired_methods"):
        load_protocol(source)


# --- Quantus 0.6 as the reference -----------------------------------------------------------

SEED = 5
NP_SEED = 123


def _quantus() -> ModuleType:
    try:
        from faceattr.attribution.propagation import _zennit

        _zennit()
    except ImportError:
        pass
    try:
        return importlib.import_module("quantus")
    except ModuleNotFoundError as exc:
        pytest.skip(f"the Quantus reference tests need the package {exc.name!r}")


class _Keyed:
    # reset_parameters from faceattr's keyed stream once the layer has its name
    key: str | None = None

    def reset_parameters(self) -> None:
        if self.key is None:
            super().reset_parameters()  # type: ignore[misc]
        else:
            reinitialise_module(self, torch_generator(SEED, "qtiny", "randomise", self.key))  # type: ignore[arg-type]


class KeyedConv(_Keyed, nn.Conv2d):
    pass


class KeyedLinear(_Keyed, nn.Linear):
    pass


def _keyed_model() -> VerificationModel:
    network = nn.Sequential(KeyedConv(3, 8, 3, stride=2, padding=1), nn.ReLU(),
                            KeyedConv(8, 8, 3, stride=2, padding=1), nn.ReLU(),
                            nn.Flatten(), KeyedLinear(8 * 4 * 4, 16))
    generator = torch_generator(SEED, "qtiny", "init")
    with torch.no_grad():
        for parameter in network.parameters():
            parameter.copy_(torch.randn(parameter.shape, generator=generator) * 0.3)
    for name, module in network.named_modules():
        if isinstance(module, _Keyed):
            module.key = name
    return VerificationModel(name="qtiny", network=network.eval(), input_size_px=16,
                             pixel_mean=0.0, pixel_scale=255.0, weights_sha256="0" * 64)


class ScoreModel(nn.Module):
    # the verification score as a one-output Quantus model: s(x, x_b)[:, None]
    def __init__(self, vmodel: VerificationModel, partners: torch.Tensor) -> None:
        super().__init__()
        self.network = vmodel.network
        self.vmodel = vmodel
        self.register_buffer("partners", partners)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        partners = self.partners
        assert isinstance(partners, torch.Tensor)
        embed = self.vmodel.embed
        return (embed(x) * embed(partners).detach()).sum(dim=1)[:, None]


@contextlib.contextmanager
def _isolated(np_seed: int) -> Iterator[None]:
    # Quantus seeds torch's and reads numpy's global RNG: both restored afterwards
    saved = np.random.get_state()  # noqa: NPY002 - saved to restore
    np.random.set_state(np.random.RandomState(np_seed).get_state())  # noqa: NPY002, TID251
    try:
        with torch.random.fork_rng(), warnings.catch_warnings(), np.errstate(all="ignore"):
            warnings.simplefilter("ignore")
            yield
    finally:
        np.random.set_state(saved)  # noqa: NPY002 - restore


def _states(vmodel: VerificationModel, probes: torch.Tensor, partners: torch.Tensor
            ) -> tuple[list[AttributionBatch], tuple[tuple[str, ...], ...]]:
    steps = layer_steps(("0", "2", "5"), "bottom_up")
    models = [vmodel, *(randomise_layers(vmodel, s, seed=SEED) for s in steps)]
    batches = []
    for m in models:
        with torch.no_grad():
            emb = m.embed(partners)
        batches.append(AttributionBatch(model=m, probes=probes, partner_embeddings=emb,
                                        pair_ids=tuple(f"p{i}" for i in range(len(probes))),
                                        identity_masks=None, seed=0))
    return batches, steps


@pytest.fixture(scope="module")
def quantus_inputs() -> dict[str, Any]:
    vmodel = _keyed_model()
    images = numpy_generator(0, "quantus-mprt").random((8, 3, 16, 16)).astype(np.float32)
    probes, partners = torch.from_numpy(images[:4]), torch.from_numpy(images[4:])
    return {"model": vmodel, "probes": probes, "partners": partners,
            "score": ScoreModel(vmodel, partners)}


def test_keyed_randomisation_is_the_same_model_in_both(quantus_inputs):
    # Quantus' generator calls reset_parameters(): it must give faceattr's randomised weights
    vmodel = quantus_inputs["model"]
    copy = randomise_layers(vmodel, ("0",), seed=SEED)
    import copy as copy_module

    net = copy_module.deepcopy(vmodel.network)
    net[0].reset_parameters()
    torch.testing.assert_close(net[0].weight, copy.network[0].weight, rtol=0, atol=0)


def test_smprt_matches_quantus_smooth_mprt(quantus_inputs):
    quantus = _quantus()
    n_samples, n_rows = 3, 4
    probes = quantus_inputs["probes"]
    metric = quantus.SmoothMPRT(layer_order="bottom_up", seed=42, nr_samples=n_samples,
                                noise_magnitude=0.1, disable_warnings=True)
    with _isolated(NP_SEED):
        scores = metric(model=quantus_inputs["score"], x_batch=probes.numpy(),
                        y_batch=np.zeros(n_rows, dtype=int), a_batch=None,
                        explain_func=quantus.explain, explain_func_kwargs={"method": "Saliency"},
                        softmax=False, device="cpu", batch_size=n_rows)
    # replay Quantus' draws: the reference maps, the "original" comparison, one set per layer
    legacy = np.random.RandomState(NP_SEED)  # noqa: TID251 - replaying Quantus' stream
    sets = [np.stack([legacy.randn(*probes.shape) for _ in range(n_samples - 1)]
                     + [np.zeros(probes.shape)], axis=1) for _ in range(2 + 3)]
    states, steps = _states(quantus_inputs["model"], probes, quantus_inputs["partners"])
    saliency = build_method("saliency", "saliency", {}, "t")
    reference = smoothed_maps(saliency, states[0], sets[0], 0.1)
    assert list(scores) == ["original", "network.0", "network.2", "network.5"]
    for i, (state, name) in enumerate(zip(states[1:], ("network.0", "network.2", "network.5"),
                                          strict=True)):
        maps = smoothed_maps(saliency, state, sets[2 + i], 0.1)
        ours = [smprt_similarity(reference[r], maps[r], use_abs=True) for r in range(n_rows)]
        np.testing.assert_allclose(ours, scores[name], rtol=0, atol=1e-4, err_msg=name)
    assert len(steps) == 3


def test_emprt_matches_quantus_efficient_mprt(quantus_inputs):
    quantus = _quantus()
    probes, n_rows = quantus_inputs["probes"], 4
    metric = quantus.EfficientMPRT(layer_order="bottom_up", seed=42, disable_warnings=True)
    with _isolated(NP_SEED):
        scores = metric(model=quantus_inputs["score"], x_batch=probes.numpy(),
                        y_batch=np.zeros(n_rows, dtype=int), a_batch=None,
                        explain_func=quantus.explain, explain_func_kwargs={"method": "Saliency"},
                        softmax=False, device="cpu", batch_size=n_rows)
    states, _ = _states(quantus_inputs["model"], probes, quantus_inputs["partners"])
    saliency = build_method("saliency", "saliency", {}, "t")
    before, after = saliency.attribute(states[0]), saliency.attribute(states[-1])
    ratios = [discrete_entropy(a, 100) / discrete_entropy(b, 100)
              for b, a in zip(before, after, strict=True)]
    # Quantus reports the relative rise, ratio - 1
    np.testing.assert_allclose(np.array(ratios) - 1.0, scores, rtol=1e-6, atol=1e-9)


def test_the_report_table_renders_from_the_artefact(synthetic):
    from faceattr.report.render import _environment, _repaired_rows

    row = synthetic["result"].to_json()
    table = _repaired_rows(row)
    assert table is not None
    by_method = {r["method"]: r for r in table["rows"]}
    saliency = synthetic["result"].repaired.method("saliency")
    assert by_method["saliency"]["smprt"] == saliency.full.mean
    assert by_method["broken"]["error"] == "RuntimeError: boom"
    assert _repaired_rows(row | {"repaired": None}) is None
    # the report's repaired-MPRT block, rendered alone from the table
    source = Path(__file__).parents[2] / "faceattr/report/templates/report.html.j2"
    text = source.read_text(encoding="utf-8")
    start = text.index("{% if repaired_mprt is not none %}")
    end = text.index("</table>\n{% endif %}", start) + len("</table>\n{% endif %}")
    html = _environment().from_string(text[start:end]).render(repaired_mprt=table)
    assert html.count("<tr>") == 1 + len(table["rows"])
    assert f"{saliency.full.mean:.3f}" in html
    assert "error: RuntimeError: boom" in html
