"""Running a protocol: the run folder, its identity and integrity, the stages, shards."""
