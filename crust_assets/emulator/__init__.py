"""Local emulator of the Crustdata batch contact-enrich API.

Start it with ``crust-assets emulator`` or, from Python, ``EmulatorProcess``;
steer it with ``EmulatorAdmin``; compute what it will deliver with
``synthetic_contacts``. Importing this package stays light (no starlette,
no uvicorn): the server modules are imported only when a server runs.
"""

from __future__ import annotations

from typing import Any

from crust_assets.emulator.admin import EmulatorAdmin, EmulatorAdminError
from crust_assets.emulator.faults import FAULT_NAMES, Faults
from crust_assets.emulator.process import (
    DEFAULT_TEST_API_KEY,
    EmulatorProcess,
    EmulatorStartError,
    free_port,
)
from crust_assets.emulator.store import urls_sha256
from crust_assets.emulator.synth import (
    FIELD_CREDITS,
    FIELDS,
    SyntheticProfile,
    leaf_fields,
    profile_key,
    record_credits,
    synthetic_contacts,
    synthetic_profile,
    to_flat,
)

__all__ = [
    "DEFAULT_TEST_API_KEY",
    "FAULT_NAMES",
    "FIELDS",
    "FIELD_CREDITS",
    "EmulatorAdmin",
    "EmulatorAdminError",
    "EmulatorConfig",
    "EmulatorProcess",
    "EmulatorStartError",
    "Faults",
    "SyntheticProfile",
    "create_app",
    "free_port",
    "leaf_fields",
    "profile_key",
    "record_credits",
    "serve",
    "synthetic_contacts",
    "synthetic_profile",
    "to_flat",
    "urls_sha256",
]


def __getattr__(name: str) -> Any:
    """Server-side names, imported on first use (they pull in starlette/uvicorn)."""
    if name in ("EmulatorConfig", "create_app"):
        from crust_assets.emulator import app

        return getattr(app, name)
    if name == "serve":
        from crust_assets.emulator.server import serve

        return serve
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
