"""Plain-float parameters -> Brian2 quantities, read off the unit suffix of each field name.

Configs and parameter classes hold plain floats with the unit in the name (``tau_m_ms``,
``v_rest_mv``, ``max_rate_hz``); equations use the name without it (``tau_m``, ``v_rest``).
`brian_namespace` makes the namespace a ``run()`` needs from such a dataclass, so no
parameter class writes its own conversion.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from typing import Any

import brian2 as b2

#: Field-name suffix -> Brian2 unit.
SUFFIXES = {
    "_ms": b2.ms,
    "_s": b2.second,
    "_mv": b2.mV,
    "_hz": b2.Hz,
    "_na": b2.nA,
    "_mohm": b2.Mohm,
}

#: Names Brian2 defines itself inside every group: never put into a namespace.
RESERVED = {"t", "dt", "i", "j", "N", "xi", "lastspike", "not_refractory"}


def split_unit(name: str) -> tuple[str, Any]:
    """``"tau_m_ms"`` -> ``("tau_m", ms)``; a name without a unit suffix -> ``(name, None)``."""
    for suffix, unit in SUFFIXES.items():
        if name.endswith(suffix) and len(name) > len(suffix):
            return name[: -len(suffix)], unit
    return name, None


def brian_namespace(params: Any, rename: Mapping[str, str] | None = None,
                    extra: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """The Brian2 namespace of a parameter dataclass.

    Parameters
    ----------
    params : dataclass instance
        Fields with a unit suffix become quantities (``tau_e_ms=100.0`` -> ``tau_e = 100*ms``);
        other numbers pass unchanged; names Brian2 reserves (``dt``, ...) are left out.
    rename : mapping of str to str, optional
        Equation names that differ from the field name without its suffix, e.g.
        ``{"e_exc": "E_exc"}`` for a field ``e_exc_mv`` used as ``E_exc`` in the equations.
    extra : mapping, optional
        Derived quantities to add (they win over fields of the same name).

    Returns
    -------
    dict of str -> quantity or number
    """
    rename = dict(rename or {})
    out: dict[str, Any] = {}
    for f in dataclasses.fields(params):
        value = getattr(params, f.name)
        if isinstance(value, bool) or not isinstance(value, int | float):
            continue
        base, unit = split_unit(f.name)
        name = rename.pop(base, base)
        if name in RESERVED:
            continue
        out[name] = value * unit if unit is not None else value
    if rename:
        raise ValueError(f"rename names no field of {type(params).__name__}: {sorted(rename)}")
    out.update(extra or {})
    return out
