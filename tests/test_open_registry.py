# One registry mechanism, open to users (issue #18): built-ins, entry points, import paths;
# frozen; a collision is one line; the public API; init, the protocol reference, the Python API.
from __future__ import annotations

import json
import sys
import warnings
from pathlib import Path

import numpy as np
import pytest
from numpy.typing import NDArray

import faceattr
from faceattr.attribution.base import AttributionBatch, AttributionMethod, MethodInfo
from faceattr.attribution.registry import METHODS, _check_method
from faceattr.config import ProtocolError
from faceattr.protocol import load_protocol
from faceattr.registry import Registry
from tests.helpers import small_protocol

REPO = Path(__file__).parents[1]


class CentreMap(AttributionMethod):
    """A user's method for these tests: relevance falls off from the image centre."""

    info = MethodInfo(name="centre_map", reference="test", aggregation="map",
                      multiplies_by_inputs=False, has_convergence_delta=False,
                      stochastic=False, is_control=True)

    def attribute(self, batch: AttributionBatch) -> NDArray[np.float64]:
        n, _, height, width = batch.probes.shape
        y, x = np.mgrid[0:height, 0:width]
        centre = -((y - height / 2) ** 2 + (x - width / 2) ** 2).astype(np.float64)
        return np.repeat(centre[None], n, axis=0)


def _dist(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, name: str, group: str,
          entries: dict[str, str]) -> None:
    """An installed distribution with entry points (a dist-info folder on sys.path)."""
    info = tmp_path / "site" / f"{name}-1.0.dist-info"
    info.mkdir(parents=True)
    (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {name}\nVersion: 1.0\n")
    (info / "entry_points.txt").write_text(
        f"[{group}]\n" + "".join(f"{k} = {v}\n" for k, v in entries.items()))
    monkeypatch.syspath_prepend(str(tmp_path / "site"))


def _fresh_method_registry() -> Registry[type[AttributionMethod]]:
    return Registry(kind="method", builtins=lambda: METHODS, check=_check_method)


def test_an_entry_point_method_is_found_by_name(tmp_path: Path,
                                                monkeypatch: pytest.MonkeyPatch) -> None:
    _dist(tmp_path, monkeypatch, "userstudy", "faceattr.methods",
          {"centre_map": "tests.test_open_registry:CentreMap"})
    registry = _fresh_method_registry()
    assert registry.resolve("centre_map", "p.toml") is CentreMap
    assert "centre_map" in registry.names()
    assert "saliency" in registry.names()
    assert isinstance(registry.table(), type(METHODS))  # frozen (a mappingproxy)
    with pytest.raises(TypeError):
        registry.table()["x"] = CentreMap  # type: ignore[index]


def test_a_name_collision_is_one_line_naming_both(tmp_path: Path,
                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    _dist(tmp_path, monkeypatch, "clashing", "faceattr.methods",
          {"saliency": "tests.test_open_registry:CentreMap"})
    with pytest.raises(ProtocolError, match=r"method name 'saliency' is provided twice: by "
                                            r"faceattr \(built-in\) and by clashing") as info:
        _fresh_method_registry().table()
    assert "\n" not in str(info.value)


def test_a_broken_entry_point_or_import_path_is_one_line(tmp_path: Path,
                                                         monkeypatch: pytest.MonkeyPatch) -> None:
    registry = _fresh_method_registry()
    with pytest.raises(ProtocolError, match=r"method = 'nopkg\.mod:X' cannot be imported "
                                            r"\(ModuleNotFoundError"):
        registry.resolve("nopkg.mod:X", "p.toml [[methods]] #1")
    with pytest.raises(ProtocolError, match=r"not a subclass of faceattr\.AttributionMethod"):
        registry.resolve("tests.test_open_registry:_dist", "p.toml")
    _dist(tmp_path, monkeypatch, "broken", "faceattr.methods", {"bad": "nopkg.mod:X"})
    with pytest.raises(ProtocolError, match=r"entry point bad = nopkg.mod:X of broken"):
        _fresh_method_registry().table()


def test_a_protocol_names_a_users_method_by_import_path(tmp_path: Path) -> None:
    text = small_protocol(n_pairs=6, methods=("oracle",)) + (
        '\n[[methods]]\nmethod = "tests.test_open_registry:CentreMap"\n')
    path = tmp_path / "p.toml"
    path.write_text(text, encoding="utf-8")
    protocol = load_protocol(path)
    assert [m.id for m in protocol.methods] == ["oracle", "centre_map"]  # id: its info.name
    run = faceattr.run(path, reports_dir=tmp_path / "reports")
    assert {r.method for r in run.records} == {"oracle", "centre_map"}
    assert run.passed  # the implicit error budgets hold
    assert faceattr.load_run(run.folder).records == run.records


def test_user_sources_claims_and_models_resolve_the_same_way() -> None:
    from faceattr.claims.registry import CLAIM_REGISTRY
    from faceattr.data.sources import SOURCE_REGISTRY
    from faceattr.models.loading import MODEL_REGISTRY

    assert SOURCE_REGISTRY.resolve("synthetic", "x") is SOURCE_REGISTRY.table()["synthetic"]
    with pytest.raises(ProtocolError, match=r"source 'faceattr\.data\.sources:SOURCES' is not "
                                            r"usable"):
        SOURCE_REGISTRY.resolve("faceattr.data.sources:SOURCES", "p.toml")
    with pytest.raises(ProtocolError, match=r"claim 'faceattr\.io:dumps_strict' is not usable"):
        CLAIM_REGISTRY.resolve("faceattr.io:dumps_strict", "p.toml")
    loader = MODEL_REGISTRY.resolve("faceattr.models.loading:_synthetic", "p.toml")
    assert loader(None).name == "synthetic_cnn"
    with pytest.raises(ProtocolError, match="model = 'resnet50' is not registered"):
        MODEL_REGISTRY.resolve("resnet50", "p.toml")


def test_relative_paths_are_taken_from_the_protocol_folder(tmp_path: Path) -> None:
    import shutil

    study = tmp_path / "study"
    (study / "weights").mkdir(parents=True)
    shutil.copy(REPO / "faceattr/assets/models/synthetic_cnn.pt", study / "weights" / "m.pt")
    text = small_protocol(n_pairs=4, methods=("oracle",)).replace(
        'name = "synthetic_cnn"', 'name = "synthetic_cnn"\nweights = "weights/m.pt"')
    (study / "p.toml").write_text(text, encoding="utf-8")
    protocol = load_protocol(study / "p.toml")
    assert protocol.model.weights == str((study / "weights" / "m.pt").resolve())


def test_the_public_api_is_one_flat_namespace() -> None:
    for name in faceattr.__all__:
        assert getattr(faceattr, name) is not None
    assert faceattr.AttributionMethod is AttributionMethod
    with pytest.raises(AttributeError):
        _ = faceattr.no_such_name  # type: ignore[attr-defined]


def test_init_writes_a_protocol_that_plan_accepts(tmp_path: Path,
                                                  capsys: pytest.CaptureFixture[str]) -> None:
    from faceattr.cli import main

    sys.path.insert(0, str(REPO / "examples" / "mystudy" / "src"))
    try:
        from mystudy.make_assets import export_model, write_pairs
    finally:
        sys.path.pop(0)
    assets = tmp_path / "assets"
    assets.mkdir()
    with warnings.catch_warnings():  # torch's legacy ONNX exporter announces its deprecation
        warnings.simplefilter("ignore", DeprecationWarning)
        model = export_model(assets)
    write_pairs(assets, 6)
    out = tmp_path / "study" / "p.toml"
    args = ["init", "--model", str(model), "--data", str(assets / "faces"), "--out", str(out),
            "--input-size-px", "64", "--embedding-dim", "128", "--n-pairs", "6"]
    assert main(args) == 0
    text = out.read_text()
    assert 'source = "pairs_csv"' in text
    assert 'path = "../assets/model.onnx"' in text
    assert main(args) == 2  # never overwrites
    capsys.readouterr()
    patched = text.replace("mean = [127.5, 127.5, 127.5]", "mean = [0.0, 0.0, 0.0]").replace(
        "std = [128.0, 128.0, 128.0]", "std = [1.0, 1.0, 1.0]")
    out.write_text(patched)
    assert main(["plan", str(out)]) == 0
    assert "6 pairs x 5 methods" in capsys.readouterr().out


def test_the_protocol_reference_is_generated_and_complete() -> None:
    from faceattr.reference import protocol_reference, reference_tables

    tables = reference_tables()
    undocumented = [f"{table} {key}" for table, keys in tables["protocol"].items()
                    for key, entry in keys.items() if not entry["doc"]]
    assert undocumented == []
    for name, rows in tables["methods"].items():
        assert all(row["doc"] for row in rows), name
    assert set(tables["sources"]) >= {"synthetic", "lfw", "folder", "demo", "pairs_csv"}
    text = protocol_reference()
    assert (REPO / "PROTOCOL.md").read_text(encoding="utf-8") == text, \
        "PROTOCOL.md is stale: faceattr protocol-reference > PROTOCOL.md"
    assert json.dumps(tables)  # JSON-ready


def test_the_run_hash_covers_normalised_parameters(tmp_path: Path) -> None:
    base = small_protocol(n_pairs=4, methods=("oracle",)) + (
        '\n[[methods]]\nmethod = "integrated_gradients"\n')
    hashes = []
    for extra in ("", "n_steps = 32\n", "n_steps = 16\n"):
        path = tmp_path / f"p{len(hashes)}.toml"
        path.write_text(base.replace('method = "integrated_gradients"\n',
                                     'method = "integrated_gradients"\n' + extra))
        hashes.append(load_protocol(path).content_sha256)
    assert hashes[0] == hashes[1]  # the default written out or not: one protocol
    assert hashes[1] != hashes[2]


GRAIN = None


def test_a_users_fill_by_import_path(tmp_path: Path) -> None:
    from faceattr.falsification.counterfactuals import Fill, counterfactuals, fill_of
    from faceattr.rng import numpy_generator

    grey = fill_of("tests.test_open_registry:GREY_FILL", "test")
    assert isinstance(grey, Fill)
    image = numpy_generator(0, "img").random((3, 8, 8)).astype(np.float32)
    out = counterfactuals(image, np.arange(10), fill="tests.test_open_registry:GREY_FILL",
                          perturbation_sigma=0.0, rngs=[numpy_generator(0, "k")])
    assert np.all(out[0].reshape(3, -1)[:, :10] == np.float32(0.5))
    with pytest.raises(ProtocolError, match=r"fill 'tests\.test_open_registry:GRAIN' is not "
                                            r"usable"):
        fill_of("tests.test_open_registry:GRAIN", "p.toml")
    text = small_protocol(n_pairs=4, methods=("oracle",)).replace(
        'fill = "mean"', 'fill = "tests.test_open_registry:GREY_FILL"')
    path = tmp_path / "p.toml"
    path.write_text(text)
    run = faceattr.run(path, reports_dir=tmp_path / "reports")
    assert {r.status for r in run.records} == {"valid"}


def _grey(image: NDArray[np.float32], region_idx: NDArray[np.intp],
          blur_sigma_px: float) -> NDArray[np.float64]:
    del region_idx, blur_sigma_px
    return np.full((image.shape[0], 1), 0.5)


def _make_grey() -> object:
    from faceattr.falsification.counterfactuals import Fill

    return Fill("grey", _grey)


GREY_FILL = _make_grey()


def test_validate_outside_a_checkout_uses_the_installed_gate(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
        capsys: pytest.CaptureFixture[str]) -> None:
    from faceattr import cli

    monkeypatch.chdir(tmp_path)  # no validation/ suite here
    assert cli.main(["validate"]) == 2  # which protocol? one line
    assert "name the protocol(s) to check" in capsys.readouterr().err
    args = cli._parser().parse_args(["validate", "study.toml", "--reports-dir", "r"])
    command = cli._validate_command(args)
    assert command[3:8] == ["--pyargs", "faceattr.gate.checks", "-p", "faceattr.gate.plugin",
                            "--rootdir"]
    assert command[-2:] == ["--protocol", "study.toml"]
    assert cli.main(["validate", str(tmp_path / "missing.toml")]) == 2  # pytest usage error
