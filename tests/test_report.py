# The report renders from artefacts only, escapes hostile strings, and shows every claim.
from __future__ import annotations

from pathlib import Path

import pytest

from faceattr.claims import ClaimSpec, RunArtefacts, evaluate_claim
from faceattr.claims.ledger import claims_document, write_claims
from faceattr.integrity import record_new_files
from faceattr.io import append_jsonl_line, write_json
from faceattr.report import render_report
from faceattr.validity.dose_response import write_validity
from tests.helpers import records, run
from tests.test_dose_response import FAMILY_SPEC, _artefacts_json, _mixed

HOSTILE = '<script>alert("x")</script>'


def _artefacts(root: Path, method: str, *, with_claims: bool = True) -> None:
    rows = records(method, n_falsified=3, n_passed=7, n_trivial=2)
    summary = run({method: rows})
    for row in rows:
        append_jsonl_line(root / "records.jsonl", row.to_json())
    write_json(root / "summary.json", summary.to_json())
    write_json(root / "protocol.json", {"name": "t", "methods": [
        {"id": method, "method": "grad_cam", "relevance": "signed",
         "params": {"layer": "blocks.9"}}]})
    write_json(root / "manifest.json", {"pairs": []})
    write_json(root / "provenance.json", {"seed": 0, "packages": {"torch": "2.13.0"},
                                          "artefacts": {}})
    record_new_files(root)  # as each stage of a run does
    if not with_claims:
        return
    spec = ClaimSpec(id=f"control:{method}:fr<=0.05", kind="fr_at_most",
                     params=(("method", method), ("threshold", 0.05)))
    result = evaluate_claim(spec, RunArtefacts(summary=summary, records=rows, claims=(spec,)))
    write_claims(root / "claims.json", claims_document(
        "t", "0" * 64, [result.claim_id, "control:missing"], {result.claim_id: result}, {}))
    record_new_files(root)


def test_hostile_strings_are_escaped(tmp_path: Path) -> None:
    _artefacts(tmp_path, HOSTILE)
    html = render_report(tmp_path).read_text()
    assert HOSTILE not in html
    assert "&lt;script&gt;alert(" in html


def test_every_declared_claim_and_section_is_present(tmp_path: Path) -> None:
    _artefacts(tmp_path, "saliency")
    html = render_report(tmp_path).read_text()
    assert 'data-claim-id="control:saliency:fr&lt;=0.05"' in html
    assert 'data-claim-id="control:missing"' in html  # declared but never judged: shown
    assert "NOT RUN" in html
    assert "GATE FAILED" in html
    for section in ('id="claims"', 'id="fr"', 'id="forest"', 'id="ledger"', 'id="provenance"',
                    'id="artefacts"', 'id="roc"', 'id="k-sufficiency"', 'id="map-histograms"',
                    'id="distributions"', 'id="mapstats"', "data:image/png;base64,"):
        assert section in html
    assert "http://" not in html
    assert "https://" not in html


def test_trivial_map_share_per_method_with_its_layer(tmp_path: Path) -> None:
    # the seed's headline statistic (share of uniform maps) is reported per method and layer
    _artefacts(tmp_path, "grad_cam_mid")  # 3 falsified, 7 passed, 2 trivial
    html = render_report(tmp_path).read_text()
    table = html[html.index('id="trivial-maps"'):]
    table = table[:table.index("</table>")]
    assert "<code>blocks.9</code>" in table
    assert "2 / 12" in table
    assert "0.167 [0.047, 0.448]" in table  # Wilson 95% of 2/12


def test_missing_artefact_is_one_line_error(tmp_path: Path) -> None:
    _artefacts(tmp_path, "saliency", with_claims=False)
    with pytest.raises(ValueError, match=r"cannot render a report without claims\.json"):
        render_report(tmp_path)


def test_an_artefact_edited_after_the_run_is_refused(tmp_path: Path) -> None:
    from faceattr.errors import IntegrityError

    _artefacts(tmp_path, "saliency")
    render_report(tmp_path)
    text = (tmp_path / "records.jsonl").read_text()
    (tmp_path / "records.jsonl").write_text(text.replace('"falsified":true', '"falsified":false',
                                                         1))
    with pytest.raises(IntegrityError, match=r"records\.jsonl: edited after the run"):
        render_report(tmp_path)
    (tmp_path / "records.jsonl").write_text(text)  # restored: renders again
    render_report(tmp_path)
    (tmp_path / "claims.json").unlink()
    with pytest.raises(IntegrityError, match=r"claims\.json: recorded in provenance.json but "
                                             r"missing"):
        render_report(tmp_path)


def test_gallery_is_embedded_and_its_hashes_checked(tmp_path: Path) -> None:
    import hashlib

    from faceattr.io import atomic_write_bytes

    _artefacts(tmp_path, "saliency")
    png = b"\x89PNG\r\n\x1a\n fake"
    atomic_write_bytes(tmp_path / "gallery" / "p__saliency.png", png)
    write_json(tmp_path / "gallery.json", {"entries": [
        {"method": "saliency", "pair_id": "p", "file": "gallery/p__saliency.png",
         "sha256": hashlib.sha256(png).hexdigest()},
        {"method": "lrp", "error": "UnsupportedModelError: <b>no rule</b>"}]})
    record_new_files(tmp_path)
    html = render_report(tmp_path).read_text()
    assert 'id="gallery"' in html
    assert "UnsupportedModelError: &lt;b&gt;no rule&lt;/b&gt;" in html
    atomic_write_bytes(tmp_path / "gallery" / "p__saliency.png", png + b"tampered")
    with pytest.raises(ValueError, match=r"p__saliency\.png: edited after the run"):
        render_report(tmp_path)


def test_validity_section_renders_from_validity_and_artefact_files(tmp_path: Path) -> None:
    _artefacts(tmp_path, "saliency")
    assert 'id="strata"' in render_report(tmp_path).read_text()
    assert "Discriminative validity" not in render_report(tmp_path).read_text()
    write_validity(tmp_path, _mixed(), [FAMILY_SPEC], seed=3)
    _artefacts_json(tmp_path)
    record_new_files(tmp_path)
    html = render_report(tmp_path).read_text()
    for needle in ('id="family-dose"', 'id="artefact-controls"', "(primary)",
                   "undefined: the per-method values are constant", "validity.json",
                   "artefacts.json"):
        assert needle in html
