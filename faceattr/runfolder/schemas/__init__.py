"""JSON Schemas of the run artefacts, validated on write and on read."""
