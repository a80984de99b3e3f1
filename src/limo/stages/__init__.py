"""Curation stages, one module per stage. Each exposes a dataclass `Config` and `run(ds, cfg, ctx) -> StageResult`.

The pipeline order is the explicit list in `limo.curate.curate_stages`; `limo curate RECIPE.yaml --out RUN` runs it.
"""
