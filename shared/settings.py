"""A room's settings: their names, rules and defaults, the one place both front doors and
the functions read them from. Stored in the room's settings hash as text."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, NamedTuple

from .errors import InvalidField
from .validation import BOOLEAN_RULE, MAX_PAGE, boolean


class Rule(NamedTuple):
    kind: str  # "bool", "int" or "choice"
    default: Any
    choices: tuple[str, ...] = ()
    about: str = ""


RULES: dict[str, Rule] = {
    "autoplay": Rule("bool", False, about="the room moves on by itself when a track ends"),
    "skip_threshold": Rule("int", 0, about="distinct skip votes that skip a track (0: off)"),
    "fallback": Rule("choice", "none", ("none", "history"),
                     "what an advance on an empty queue plays: nothing, or the history "
                     "track played longest ago"),
    "no_repeat_minutes": Rule("int", 0, about="a track played less than this long ago may "
                                              "not be added again (0: off)"),
    "require_guest": Rule("bool", False, about="adds, votes and skips need a guest token"),
    "max_per_guest": Rule("int", 0, about="queued tracks per guest (0: no limit)"),
    "locked": Rule("bool", False, about="only hosts may add"),
    "order": Rule("choice", "votes", ("votes", "fair"),
                  "the play order: by votes, or fair (every guest's best track, then every "
                  "guest's second, ...)"),
}


def check(updates: Mapping[str, Any]) -> list[tuple[str, str]]:
    """``{name: value}`` from a client as name, stored text pairs; InvalidField naming the
    first unknown setting or bad value."""
    if not isinstance(updates, Mapping) or not updates:
        raise InvalidField("settings", "must be a JSON object with at least one of "
                                       + ", ".join(RULES))
    out = []
    for name, value in updates.items():
        rule = RULES.get(name)
        if rule is None:
            raise InvalidField(name, "is not a room setting; the settings are "
                                     + ", ".join(RULES))
        out.append((name, _text(name, rule, value)))
    return out


def _text(name: str, rule: Rule, value: Any) -> str:
    if rule.kind == "bool":
        if isinstance(value, bool):
            return "1" if value else "0"
        read = boolean(value) if isinstance(value, str) else None
        if read is None:
            raise InvalidField(name, f"must be true or false ({BOOLEAN_RULE})")
        return "1" if read else "0"
    if rule.kind == "int":
        if isinstance(value, bool) or not isinstance(value, int):
            if isinstance(value, str) and value.strip().isascii() and value.strip().isdigit():
                value = int(value)
            else:
                raise InvalidField(name, "must be a whole number >= 0")
        if not 0 <= value <= MAX_PAGE:
            raise InvalidField(name, f"must be between 0 and {MAX_PAGE}, got {value}")
        return str(value)
    if value not in rule.choices:
        raise InvalidField(name, "must be one of " + ", ".join(repr(c) for c in rule.choices))
    return str(value)


def effective(stored: Mapping[str, str]) -> dict[str, Any]:
    """Every setting, typed, with the defaults for those never set."""
    out: dict[str, Any] = {}
    for name, rule in RULES.items():
        raw = stored.get(name)
        if raw is None:
            out[name] = rule.default
        elif rule.kind == "bool":
            out[name] = raw == "1"
        elif rule.kind == "int":
            out[name] = int(raw)
        else:
            out[name] = raw
    return out
