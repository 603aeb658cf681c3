"""The JSON profile and the saved state, written into an output folder.

``profile.json`` follows the schema documented in ``docs/profile-schema.md``; its
``schema_version`` changes in the major part whenever a field changes meaning or goes away.
``state.arrow`` is the merged state bundle with the scan plan in its metadata.
"""

from __future__ import annotations

import datetime as dt
import json
import math
import os
import re
import tempfile
from pathlib import Path
from typing import Any

from spark_explore import __version__
from spark_explore.api import ProfileResult
from spark_explore.errors import InvalidArgumentError, OutputExistsError, OutputNotWritableError

SCHEMA_VERSION = "1.0"
PROFILE_FILE = "profile.json"
STATE_FILE = "state.arrow"


def profile_document(result: ProfileResult) -> dict[str, Any]:
    """The JSON-ready profile."""
    sample = result.bundle["reservoir"]
    return {
        "schema_version": SCHEMA_VERSION,
        "spark_explore_version": __version__,
        "created": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"),
        "source": result.source,
        "rows": result.rows,
        "scan": {"seconds": round(result.seconds, 3), "config": result.plan.to_dict()["config"]},
        "columns": result.columns,
        "correlations": result.correlations,
        "protocols": result.protocols,
        "sample": {
            "rows": sample.sample().num_rows,
            "size": sample.size,
            "rows_seen": int(sample.rows_seen),
            "method": "bottom-k on a 64-bit hash of the row's values (uniform, deterministic)",
            "stored_in": STATE_FILE,
        },
    }


#: ``s3://``, ``file:///``, ``dbfs:/``: a scheme of two letters or more (``C:/`` is a drive)
_URL_SCHEME = re.compile(r"[A-Za-z][A-Za-z0-9+.-]+:/")


def check_output(output: str | Path, overwrite: bool) -> Path:
    """Check, before any scan, that ``output`` can receive a profile.

    An earlier profile is never replaced unless ``overwrite`` is set, and nothing is
    created here: the folder is made only when the profile is written.

    Raises
    ------
    InvalidArgumentError
        ``output`` is empty or a URL: the profile is written to a local (or mounted) folder.
    OutputExistsError
        ``output`` is a file, or holds a profile and ``overwrite`` is False.
    OutputNotWritableError
        Neither ``output`` nor its nearest existing parent folder can be written.
    """
    text = str(output)
    if not text.strip():
        raise InvalidArgumentError("`--output` is empty; name the folder for the profile.")
    if _URL_SCHEME.match(text):
        raise InvalidArgumentError(
            f"`--output {text}` is a URL; the profile is written with local file operations, "
            "so give a folder path (on Databricks a mounted one such as /Volumes/... or "
            "/dbfs/...).",
            got=text,
        )
    folder = Path(output)
    if folder.exists() and not folder.is_dir():
        raise OutputExistsError(f"`{folder}` exists and is not a folder.", path=str(folder))
    existing = [name for name in (PROFILE_FILE, STATE_FILE) if (folder / name).exists()]
    if existing and not overwrite:
        raise OutputExistsError(
            f"`{folder}` already holds a profile ({', '.join(existing)}); "
            "choose another --output or pass --overwrite.",
            path=str(folder),
        )
    writable = folder.resolve()
    while not writable.exists():
        writable = writable.parent
    try:
        with tempfile.TemporaryFile(dir=writable):
            pass
    except OSError as exc:
        raise OutputNotWritableError(
            f"cannot write the profile into `{folder}`: {exc.strerror or exc}.",
            path=str(folder),
        ) from None
    return folder


def write_profile(result: ProfileResult, output: str | Path, *, overwrite: bool = False) -> Path:
    """Write ``profile.json`` and ``state.arrow`` into ``output``; return the JSON path.

    Each file is written beside its final name and renamed into place, so an interrupted
    run never leaves half a profile.
    """
    folder = check_output(output, overwrite)
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise OutputNotWritableError(f"cannot create output folder `{folder}`: {exc}") from None
    document = profile_document(result)
    state_tmp = folder / f".{STATE_FILE}.tmp"
    result.bundle.save(state_tmp, {"plan": result.plan.to_dict(), "source": result.source})
    os.replace(state_tmp, folder / STATE_FILE)
    json_tmp = folder / f".{PROFILE_FILE}.tmp"
    json_tmp.write_text(json.dumps(_json_safe(document), indent=2, allow_nan=False) + "\n")
    os.replace(json_tmp, folder / PROFILE_FILE)
    return folder / PROFILE_FILE


def _json_safe(value: Any) -> Any:
    """Replace non-finite floats by None (JSON has no NaN) and tuples by lists."""
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, dict):
        return {str(k): _json_safe(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_json_safe(v) for v in value]
    return value
