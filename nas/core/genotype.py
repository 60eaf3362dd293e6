"""``Genotype``: one candidate as pure data, the unit of dedup, caching, storage and export."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from nas.core.errors import GenotypeError


def _freeze(value: Any) -> Any:
    """JSON-native value -> hashable value (lists become tuples, dicts sorted item tuples)."""
    if isinstance(value, Mapping):
        return tuple((str(k), _freeze(v)) for k, v in sorted(value.items()))
    if isinstance(value, (list, tuple)):
        return tuple(_freeze(v) for v in value)
    if value is None or isinstance(value, (bool, int, float, str)):
        return value
    raise GenotypeError(f"genotype values must be JSON scalars or lists, got {type(value).__name__}")


def _thaw(value: Any) -> Any:
    if isinstance(value, tuple):
        return [_thaw(v) for v in value]
    return value


@dataclass(frozen=True)
class Genotype:
    """A frozen mapping from decision label to value, plus the space, its version and macro settings.

    ``macro`` holds what is needed to rebuild the exact network besides the decisions (channels,
    cells per stage, input shape, classes), so a genotype file alone rebuilds the model.
    """

    space: str
    version: int
    decisions: tuple[tuple[str, Any], ...]
    macro: tuple[tuple[str, Any], ...] = ()

    @classmethod
    def make(cls, space: str, version: int, decisions: Mapping[str, Any],
             macro: Mapping[str, Any] | None = None) -> Genotype:
        """Build from plain mappings (decision order is kept; macro keys are sorted)."""
        frozen = tuple((str(k), _freeze(v)) for k, v in decisions.items())
        return cls(space, int(version), frozen, _freeze(dict(macro or {})))

    def __getitem__(self, label: str) -> Any:
        for key, value in self.decisions:
            if key == label:
                return value
        raise KeyError(label)

    @property
    def values(self) -> dict[str, Any]:
        """Decisions as a dict (tuples stay tuples)."""
        return dict(self.decisions)

    @property
    def macro_dict(self) -> dict[str, Any]:
        return {k: _thaw(v) for k, v in self.macro}

    def replace(self, **changes: Any) -> Genotype:
        """A copy with some decisions changed."""
        values = self.values
        unknown = set(changes) - set(values)
        if unknown:
            raise KeyError(f"unknown decisions {sorted(unknown)}")
        values.update({k: _freeze(v) for k, v in changes.items()})
        return Genotype(self.space, self.version, tuple(values.items()), self.macro)

    def to_json(self) -> dict[str, Any]:
        """The self-contained JSON form: space, version, macro, decisions."""
        return {"space": self.space, "version": self.version, "macro": self.macro_dict,
                "decisions": {k: _thaw(v) for k, v in self.decisions}}

    @classmethod
    def from_json(cls, data: Any) -> Genotype:
        """Parse the JSON form; malformed input raises ``GenotypeError`` naming what is wrong."""
        if not isinstance(data, Mapping):
            raise GenotypeError("a genotype must be a JSON object with space, version and decisions")
        missing = [k for k in ("space", "version", "decisions") if k not in data]
        if missing:
            raise GenotypeError(f"genotype JSON lacks {', '.join(missing)}")
        if not isinstance(data["decisions"], Mapping):
            raise GenotypeError("genotype 'decisions' must be an object of label -> value")
        if not isinstance(data["version"], int):
            raise GenotypeError("genotype 'version' must be an integer")
        return cls.make(str(data["space"]), data["version"], data["decisions"], data.get("macro") or {})

    def dumps(self) -> str:
        """Canonical JSON text (sorted keys, no spaces): the input of ``fingerprint``."""
        return json.dumps(self.to_json(), sort_keys=True, separators=(",", ":"))

    def fingerprint(self) -> str:
        """Content hash of the canonical JSON (16 hex digits)."""
        return hashlib.sha256(self.dumps().encode()).hexdigest()[:16]

    def __str__(self) -> str:
        body = ", ".join(f"{k}={_thaw(v)}" for k, v in self.decisions)
        return f"{self.space}/v{self.version}({body})"
