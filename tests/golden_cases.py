"""Access to the MXNet 1.9.1 reference cases copied into ``tests/golden``.

``case(name)`` returns the manifest entry and ``arrays(name)`` its npz contents;
``cases(kind)`` lists the entries of one kind. The data were produced by real
MXNet 1.9.1 (see ``tests/golden/README.md``).
"""

from __future__ import annotations

import functools
import json
import pathlib

import numpy as np

GOLDEN = pathlib.Path(__file__).parent / "golden"


@functools.lru_cache(maxsize=1)
def manifest() -> dict:
    return json.loads((GOLDEN / "manifest.json").read_text())


def case(name: str) -> dict:
    for entry in manifest()["cases"]:
        if entry["name"] == name:
            return entry
    raise KeyError(f"no golden case named {name!r}")


def cases(kind: str) -> list[dict]:
    return [c for c in manifest()["cases"] if c["kind"] == kind]


def arrays(name: str) -> dict[str, np.ndarray]:
    entry = case(name)
    with np.load(GOLDEN / entry["npz"], allow_pickle=False) as data:
        return {k: data[k] for k in data.files}


def file_path(relative: str) -> pathlib.Path:
    return GOLDEN / relative
