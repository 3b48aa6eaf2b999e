"""Shared by the benchmarks: print a result and, when asked, save it as JSON."""
from __future__ import annotations

import json


def report(results: dict, json_path: str | None, echo: bool = True) -> dict:
    """Print ``results`` (unless ``echo`` is False) and write them to ``json_path`` if given."""
    if echo:
        print(json.dumps(results, indent=2, default=float))
    if json_path:
        with open(json_path, "w") as fh:
            json.dump(results, fh, indent=2, default=float)
    return results
