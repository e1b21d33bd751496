"""``claims.json``: every declared claim of a protocol with its outcome."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from faceattr.claims.base import ClaimResult
from faceattr.io import write_json

__all__ = ["claims_document", "write_claims"]


def claims_document(run_name: str, protocol_sha256: str, declared: Sequence[str],
                    results: Mapping[str, ClaimResult],
                    errors: Mapping[str, str], *,
                    not_evaluated: str | None = None) -> dict[str, Any]:
    """Assemble the claims document; a declared claim with no result is ``not run``.

    ``not_evaluated`` (e.g. ``"model gate failed: ..."``) marks every claim ``not evaluated``
    with that reason: the run stopped before any attribution was trusted. The gate passes
    only when every declared claim passed.
    """
    rows: list[dict[str, Any]] = []
    for claim_id in declared:
        result = results.get(claim_id)  # absent = not judged; reported, never defaulted to pass
        if not_evaluated is not None:
            rows.append({"claim_id": claim_id, "outcome": "not evaluated", "result": None,
                         "error": f"not evaluated: {not_evaluated}"})
            continue
        if result is not None:
            outcome = "passed" if result.passed else "failed"
        else:
            outcome = "error" if claim_id in errors else "not run"
        rows.append({"claim_id": claim_id, "outcome": outcome,
                     "result": None if result is None else result.to_json(),
                     "error": errors.get(claim_id, None if result else "not judged")})
    n_passed = sum(row["outcome"] == "passed" for row in rows)
    return {"run_name": run_name, "protocol_sha256": protocol_sha256,
            "not_evaluated": not_evaluated, "n_declared": len(rows), "n_passed": n_passed,
            "gate_passed": n_passed == len(rows) and len(rows) > 0, "claims": rows}


def write_claims(path: Path, document: Mapping[str, Any]) -> None:
    """Write the claims document atomically."""
    write_json(path, document)
