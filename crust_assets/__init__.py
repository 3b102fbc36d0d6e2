"""crust_assets: Dagster assets that enrich profile-URL lists through the Crustdata batch API.

`ContactTablesIOManager` is exported lazily: importing the API client, the emulator or the CLI
through this package must not pay for importing Dagster.
"""

from typing import Any

__all__ = ["ContactTablesIOManager"]


def __getattr__(name: str) -> Any:
    if name == "ContactTablesIOManager":
        from crust_assets.tables_io import ContactTablesIOManager

        return ContactTablesIOManager
    raise AttributeError(f"module 'crust_assets' has no attribute {name!r}")
