"""Optional dependencies, named by the extra of `crust_assets` that installs them.

A code location in production needs neither the local emulator nor the webhook receiver, so their
server stacks come with extras instead of with every install. Starting one of them without its
extra must say which extra to install, not end in a bare `ModuleNotFoundError` from deep inside.
The check only looks for the modules (no import), so a command stays quick to start.
"""

from __future__ import annotations

from importlib.util import find_spec

# The modules each server imports, by the extra that brings them (pyproject.toml's
# [project.optional-dependencies]; `dev` pulls in both).
EXTRA_MODULES: dict[str, tuple[str, ...]] = {
    "emulator": ("starlette", "uvicorn"),
    "webhook": ("starlette", "hypercorn"),
}


def missing_modules(extra: str) -> list[str]:
    """The modules of `extra` that this interpreter cannot import."""
    return [name for name in EXTRA_MODULES[extra] if find_spec(name) is None]


def missing_extra_message(extra: str, what: str) -> str | None:
    """Why `what` cannot start and how to fix it, or None when the extra is installed."""
    missing = missing_modules(extra)
    if not missing:
        return None
    return (
        f"{what} needs {', '.join(missing)}, which come with the {extra!r} extra:"
        f" pip install 'crust_assets[{extra}]' (in a checkout: pip install -e '.[{extra}]')"
    )
