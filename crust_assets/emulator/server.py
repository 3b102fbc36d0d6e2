"""Run the emulator with uvicorn: ``serve(host, port, state_dir, config)``.

Why a custom logging setup: uvicorn's access log prints the full request
line, which for a download is the pre-signed URL *with* its signature. It is
switched off and replaced by ``AccessLogMiddleware`` (method, path, status).
The bearer key never reaches any log: it is neither logged by uvicorn nor by
the app.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

from crust_assets.emulator.app import EmulatorConfig, create_app, wrap_with_access_log

log = logging.getLogger("crust_assets.emulator")

# Seconds uvicorn waits for in-flight requests (e.g. a "hang" fault) on shutdown.
GRACEFUL_SHUTDOWN_SECONDS = 2


def log_config(level: str = "INFO") -> dict[str, Any]:
    """One stderr handler for uvicorn's and the emulator's loggers; no uvicorn access log."""
    return {
        "version": 1,
        "disable_existing_loggers": False,
        "formatters": {
            "plain": {"format": "%(asctime)s %(levelname)s %(name)s: %(message)s"},
        },
        "handlers": {
            "stderr": {
                "class": "logging.StreamHandler",
                "formatter": "plain",
                "stream": "ext://sys.stderr",
            }
        },
        "loggers": {
            "uvicorn": {"handlers": ["stderr"], "level": level, "propagate": False},
            "uvicorn.error": {"level": level},
            "uvicorn.access": {"handlers": [], "level": "CRITICAL", "propagate": False},
            "crust_assets.emulator": {"handlers": ["stderr"], "level": level, "propagate": False},
        },
    }


def serve(
    host: str,
    port: int,
    state_dir: Path | str,
    config: EmulatorConfig,
    *,
    log_level: str = "INFO",
) -> None:
    """Serve until SIGINT/SIGTERM. Blocks; state persists in ``state_dir``."""
    import uvicorn  # imported here so importing the package stays light

    state_path = Path(state_dir).resolve()
    app = wrap_with_access_log(create_app(state_path, config))
    uv_config = uvicorn.Config(
        app,
        host=host,
        port=port,
        log_config=log_config(log_level.upper()),
        access_log=False,
        lifespan="on",
        timeout_graceful_shutdown=GRACEFUL_SHUTDOWN_SECONDS,
        proxy_headers=False,
    )
    log.info(
        "crust emulator on http://%s:%d, state dir %s, auth: %s",
        host,
        port,
        state_path,
        "CRUSTDATA_API_KEY only" if config.api_key else "any non-empty bearer key",
    )
    uvicorn.Server(uv_config).run()
