"""The protocols, in report order, and running them on a finished scan."""

from __future__ import annotations

import importlib
import importlib.util
import logging
from typing import Any

from spark_explore.protocols.base import ProtocolContext

logger = logging.getLogger(__name__)

#: Protocol name -> module implementing it (``NAME`` and ``run(context)``).
PROTOCOLS = {
    "outliers": "spark_explore.protocols.outliers",
    "variance": "spark_explore.protocols.variance",
    "normality": "spark_explore.protocols.normality",
    "missing_values": "spark_explore.protocols.missing_values",
    "collinearity": "spark_explore.protocols.collinearity",
    "interactions": "spark_explore.protocols.interactions",
    "independence": "spark_explore.protocols.independence",
}


def available() -> list[str]:
    """Protocols whose module is installed."""
    names = []
    for name, module in PROTOCOLS.items():
        if importlib.util.find_spec(module) is not None:
            names.append(name)
    return names


def run_protocols(context: ProtocolContext, names: list[str] | None = None) -> dict[str, Any]:
    """Run the named protocols (all available ones by default).

    A protocol that fails is reported with its error instead of aborting the others: the
    profile of a messy table must still be written.
    """
    reports: dict[str, Any] = {}
    for name in available() if names is None else names:
        try:
            module = importlib.import_module(PROTOCOLS[name])
            reports[name] = module.run(context).to_dict()
        except Exception as exc:  # one protocol's failure must not lose the profile
            debug = logger.isEnabledFor(logging.DEBUG)  # the traceback with --debug only
            logger.warning(
                "protocol %s failed: %s: %s", name, type(exc).__name__, exc, exc_info=debug
            )
            reports[name] = {"error": f"{type(exc).__name__}: {exc}"}
    return reports
