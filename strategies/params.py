"""Typed, validated strategy parameters: each strategy declares a dataclass whose fields carry help and bounds."""
from __future__ import annotations

from dataclasses import MISSING, dataclass, field, fields
from typing import Any


def param(default: Any, help: str, lo: float | None = None, hi: float | None = None,
          choices: tuple | None = None, label: str | None = None) -> Any:
    """A strategy parameter with its one-line help, bounds, choices, and the label a form shows where the field's
    name does not read well (a Python keyword worked around, ``lmbda`` for λ)."""
    return field(default=default, metadata={"help": help, "lo": lo, "hi": hi, "choices": choices, "label": label})


@dataclass(frozen=True)
class ParamSpec:
    name: str
    type: type
    default: Any
    help: str
    lo: float | None
    hi: float | None
    choices: tuple | None
    label: str | None = None

    @property
    def title(self) -> str:
        """What a form calls it: its label, else its name in words."""
        return self.label or self.name.replace("_", " ")


def specs(params_cls: type) -> list[ParamSpec]:
    out = []
    for f in fields(params_cls):
        md = f.metadata
        typ = type(f.default) if f.default is not MISSING else str
        out.append(ParamSpec(f.name, typ, f.default, md.get("help", ""), md.get("lo"), md.get("hi"),
                             md.get("choices"), md.get("label")))
    return out


def _coerce(spec: ParamSpec, raw: Any) -> Any:
    if spec.type is bool:
        if isinstance(raw, bool):
            return raw
        if str(raw).lower() in ("1", "true", "yes", "on"):
            return True
        if str(raw).lower() in ("0", "false", "no", "off"):
            return False
        raise ValueError(f"parameter {spec.name} must be true or false, got {raw!r}")
    try:
        value = spec.type(raw)
    except (TypeError, ValueError):
        raise ValueError(f"parameter {spec.name} must be {spec.type.__name__}, got {raw!r}") from None
    if spec.type is int and isinstance(raw, float) and raw != int(raw):
        raise ValueError(f"parameter {spec.name} must be a whole number, got {raw!r}")
    return value


def build(params_cls: type, values: dict[str, Any]) -> Any:
    """Instantiate and validate a parameter dataclass from user values (strings allowed)."""
    by_name = {s.name: s for s in specs(params_cls)}
    unknown = sorted(set(values) - set(by_name))
    if unknown:
        raise ValueError(f"unknown parameter {unknown[0]!r}; known: {', '.join(by_name) or 'none'}")
    kwargs = {}
    for name, raw in values.items():
        spec = by_name[name]
        value = _coerce(spec, raw)
        if spec.choices is not None and value not in spec.choices:
            raise ValueError(f"parameter {name} must be one of {', '.join(map(str, spec.choices))}, got {value!r}")
        if spec.lo is not None and value < spec.lo:
            raise ValueError(f"parameter {name} must be at least {spec.lo}, got {value}")
        if spec.hi is not None and value > spec.hi:
            raise ValueError(f"parameter {name} must be at most {spec.hi}, got {value}")
        kwargs[name] = value
    obj = params_cls(**kwargs)
    check = getattr(obj, "check", None)
    if check:
        check()
    return obj
