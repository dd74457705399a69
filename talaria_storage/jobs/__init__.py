"""TOML batch jobs: the job schema, step fingerprints, the runner and its log (DESIGN.md §2)."""
