"""``EmulatorAdmin``: a small client for the emulator's ``/_emulator/*`` admin API.

Why: tests, the demo and benchmarks steer the emulator (faults, clock,
credits) and inspect it (submissions log, billing) over HTTP, like any
other client would; this wrapper keeps those calls one-liners. It is not
part of the real API and must never be used against it.

An emulator started with a fixed ``CRUSTDATA_API_KEY`` guards its admin API with
that key too (its submissions log holds URLs and webhook tokens), so ``api_key``
is sent as a bearer key when given.
"""

from __future__ import annotations

from typing import Any

import httpx


class EmulatorAdminError(RuntimeError):
    """An admin call was refused (bad fault name, bad value...)."""

    def __init__(self, status_code: int, message: str) -> None:
        super().__init__(f"emulator admin call failed ({status_code}): {message}")
        self.status_code = status_code


class EmulatorAdmin:
    """Steer and inspect a running emulator at ``base_url``."""

    def __init__(self, base_url: str, *, api_key: str | None = None, timeout: float = 10.0) -> None:
        self.base_url = base_url.rstrip("/")
        self.timeout = timeout
        self._headers = {"authorization": f"Bearer {api_key}"} if api_key else {}

    def __repr__(self) -> str:
        return f"EmulatorAdmin({self.base_url!r})"

    def _call(self, method: str, path: str, json: Any = None) -> Any:
        # trust_env=False: a proxy from the environment must never sit between
        # us and a 127.0.0.1 emulator.
        with httpx.Client(timeout=self.timeout, trust_env=False) as client:
            response = client.request(
                method, f"{self.base_url}{path}", json=json, headers=self._headers
            )
        if not response.is_success:
            try:
                body = response.json()
                message = body.get("error", {}).get("message") or body.get("message") or body
            except ValueError:
                message = response.text[:200]
            raise EmulatorAdminError(response.status_code, str(message))
        return response.json()

    def health(self) -> bool:
        """True when the emulator answers its health check."""
        return bool(self._call("GET", "/_emulator/health").get("ok"))

    def faults(self) -> dict[str, Any]:
        """Current fault settings."""
        return dict(self._call("GET", "/_emulator/faults"))

    def set_faults(self, **faults: Any) -> dict[str, Any]:
        """Change some faults, e.g. ``set_faults(error_rate=0.3, seed=1)``; returns all faults."""
        return dict(self._call("PATCH", "/_emulator/faults", json=faults))

    def reset_faults(self) -> dict[str, Any]:
        """Switch every fault off."""
        return dict(self._call("DELETE", "/_emulator/faults"))

    def submissions(self) -> list[dict[str, Any]]:
        """Every accepted submit, oldest first (with ``urls_sha256`` and ``credits_billed``)."""
        return list(self._call("GET", "/_emulator/submissions")["submissions"])

    def billing(self) -> dict[str, int]:
        """``{"credits_used": ..., "balance": ...}``."""
        return dict(self._call("GET", "/_emulator/billing"))

    def set_balance(self, balance: int) -> dict[str, int]:
        """Set the credit balance (0 makes the next submit answer 402/403)."""
        return dict(self._call("POST", "/_emulator/billing", json={"balance": balance}))

    def config(self, **changes: Any) -> dict[str, Any]:
        """Read the settings, or change some (``pending_seconds``, ``processing_seconds``,
        ``part_size``, ``url_expiry_seconds``, ``insufficient_credits_status``)."""
        if changes:
            return dict(self._call("PATCH", "/_emulator/config", json=changes))
        return dict(self._call("GET", "/_emulator/config"))
