"""Dagster Components of crust_assets (the `dagster_dg_cli.registry_modules` entry point):
`dg list components` lists them and `dg scaffold defs` writes their `defs.yaml`."""

from crust_assets.components.enrichment import CrustdataEnrichmentComponent

__all__ = ["CrustdataEnrichmentComponent"]
