"""Validate run artefacts against their JSON Schemas (on write and on read)."""

from __future__ import annotations

import json
from functools import cache
from importlib import resources
from typing import Any, Literal

from jsonschema import Draft202012Validator

__all__ = ["SchemaName", "validate_artefact"]

SchemaName = Literal["record", "summary"]


@cache
def _validator(name: SchemaName) -> Draft202012Validator:
    text = resources.files("faceattr.runfolder.schemas").joinpath(
        f"{name}.schema.json").read_text(encoding="utf-8")
    schema = json.loads(text)
    Draft202012Validator.check_schema(schema)
    return Draft202012Validator(schema)


def validate_artefact(name: SchemaName, document: Any, where: str) -> None:
    """Raise a one-line ``ValueError`` naming the first schema violation."""
    error = next(iter(_validator(name).iter_errors(document)), None)
    if error is not None:
        path = "/".join(str(p) for p in error.absolute_path) or "(root)"
        raise ValueError(f"{where}: {name} schema violation at {path}: {error.message}")
