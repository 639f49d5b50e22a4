"""Rulesets: versioned data that turns signals into responses (CONTRACT §4, §6, §7).

A ``Ruleset`` is an immutable value. ``Ruleset.patched(document)`` applies a
ruleset document (every field optional) over it and validates the result; a
document that does not validate raises ``InvalidRuleset`` with one message per
offending field.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import timedelta
from fnmatch import fnmatchcase
from functools import cached_property
from typing import Any, cast

import re2

from domain.catalogue import CODES, REASONS, RESPONSES
from domain.mappings import BUILTIN_MAPPINGS, BUILTIN_MAPPINGS_2, MAPPING_FIELDS
from domain.mappings.target import CONTACT_EFFECTS, Target
from domain.signals import SYSTEM


class InvalidRuleset(ValueError):
    def __init__(self, errors: dict[str, str]):
        super().__init__("; ".join(f"{k}: {v}" for k, v in errors.items()))
        self.errors = errors


@dataclass(frozen=True)
class ResponseRule:
    final: bool
    priority: int | None

    def to_document(self) -> dict[str, Any]:
        return {"final": True} if self.final else {"final": False, "priority": self.priority}


# A system signal's ``kind`` is its response code (anything else is informational): built once.
_SYSTEM_TARGETS: dict[str, Target] = {code: Target(code) for code in RESPONSES}
_INFORMATIONAL = Target(None)

DEFAULT_VERSION = "1"  # the first built-in ruleset: a database from before builtin-2 folds under it until it adopts another
BUILTIN_PREFIX = "builtin-"  # reserved: the names of the built-in rulesets after "1" (users cannot take them)
LATEST_BUILTIN_VERSION = "builtin-2"  # what a new database starts on

# A version names a path segment of the API (/v1/rules/{version}): ASCII letters, digits, ".", "_", "-".
VERSION_FORMAT = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,63}")
PATTERN_FIELDS = ("unsubscribe_url_patterns", "machine_open_user_agents")


def check_new_version(version: Any) -> None:
    """Raises ``InvalidRuleset`` unless ``version`` may name a new ruleset (stored odd versions still load)."""
    if not isinstance(version, str) or VERSION_FORMAT.fullmatch(version) is None:
        raise InvalidRuleset(
            {"version": "a ruleset version is 1 to 64 ASCII letters, digits, '.', '_' or '-', starting with a letter or digit"}
        )
    if is_builtin_name(version):
        raise InvalidRuleset({"version": f"the prefix {BUILTIN_PREFIX!r} is reserved for the built-in rulesets"})


def is_builtin_name(version: str) -> bool:
    """A name in the reserved ``builtin-`` space (any case): only the built-in rulesets carry one."""
    return version.lower().startswith(BUILTIN_PREFIX)


def is_number_version(version: str) -> bool:
    """A version automatic numbering counts: ASCII digits only (``"²".isdigit()`` is true)."""
    return version.isascii() and version.isdigit()


def _re2_options() -> re2.Options:
    options = re2.Options()
    options.case_sensitive = False
    options.log_errors = False
    return options


_RE2_OPTIONS = _re2_options()


def compile_pattern(pattern: str) -> Any:
    """A ruleset pattern on RE2 (linear time whatever the input), case-insensitive; raises ``re2.error``."""
    return re2.compile(pattern, _RE2_OPTIONS)


def pattern_error(pattern: str) -> str | None:
    """Why RE2 refuses ``pattern``, or None when it compiles."""
    try:
        compile_pattern(pattern)
    except re2.error as exc:
        reason = exc.args[0] if exc.args else exc
        text = reason.decode("utf-8", "replace") if isinstance(reason, bytes) else str(reason)
        return f'RE2 cannot compile the pattern "{pattern}": {text}'
    return None


def _compiled(patterns: tuple[str, ...]) -> list[Any]:
    """The patterns RE2 compiles; one it refuses (a version stored before RE2) matches nothing."""
    return [compile_pattern(p) for p in patterns if pattern_error(p) is None]


OPTION_FIELDS = (
    "statistics_period_days",
    "count_machine_opens",
    "unsubscribe_from_all",
    "unsubscribe_url_patterns",
    "soft_bounce_limit",
    "machine_open_user_agents",
    "machine_open_window_seconds",
    "machine_click_window_seconds",
    "confirmation_timeout_hours",
    "confirmation_timeout_response",
)
DOCUMENT_FIELDS = ("version", "responses", "provider_mappings") + OPTION_FIELDS


@dataclass(frozen=True)
class Ruleset:
    version: str = DEFAULT_VERSION
    responses: Mapping[str, ResponseRule] = field(
        default_factory=lambda: {r.code: ResponseRule(r.final, r.priority) for r in RESPONSES.values()}
    )
    statistics_period_days: int | None = 30
    count_machine_opens: bool = False
    unsubscribe_from_all: bool = True
    unsubscribe_url_patterns: tuple[str, ...] = ("/unsubscribe",)
    soft_bounce_limit: int | None = None
    machine_open_user_agents: tuple[str, ...] = ()
    machine_open_window_seconds: int | None = None
    machine_click_window_seconds: int | None = None
    confirmation_timeout_hours: float = 48
    confirmation_timeout_response: str = "unknown_response"
    provider_mappings: Mapping[str, Mapping[str, Target]] = field(
        default_factory=lambda: {p: dict(m) for p, m in BUILTIN_MAPPINGS.items()}
    )

    # ---- questions the fold asks -------------------------------------------------

    def is_final(self, code: str) -> bool:
        return self.responses[code].final

    def priority(self, code: str) -> int:
        return self.responses[code].priority or 0

    def map(self, source: str, fields: Mapping[str, str]) -> Target:
        """The response a signal's status fields map to (CONTRACT §6, §7 Details)."""
        if source == SYSTEM:
            return _SYSTEM_TARGETS.get(fields.get("kind"), _INFORMATIONAL)  # type: ignore[arg-type]
        index = self._mapping_index.get(source)
        if index is None:
            return Target(None)
        for field_name in MAPPING_FIELDS[source]:
            value = fields.get(field_name)
            if value is None:
                continue
            exact, globs = index[field_name]
            hit = exact.get(value.lower())
            if hit is not None:
                return hit
            for pattern, target in globs:
                if fnmatchcase(value.lower(), pattern):
                    return target
        return Target(None)

    @cached_property
    def statistics_period(self) -> timedelta | None:
        """``statistics_period_days`` as the fold compares it (built once, not once a signal)."""
        return None if self.statistics_period_days is None else timedelta(days=self.statistics_period_days)

    def is_unsubscribe_link(self, url: str | None) -> bool:
        return bool(url) and any(p.search(url) for p in self._unsubscribe_patterns)

    def is_machine_user_agent(self, user_agent: str | None) -> bool:
        return bool(user_agent) and any(p.search(user_agent) for p in self._machine_agents)

    def refused_patterns(self) -> dict[str, str]:
        """The patterns RE2 cannot compile, by field and index (a stored version from before RE2 may hold some)."""
        refused: dict[str, str] = {}
        for name in PATTERN_FIELDS:
            for i, pattern in enumerate(getattr(self, name)):
                error = pattern_error(pattern)
                if error is not None:
                    refused[f"{name}.{i}"] = error
        return refused

    @cached_property
    def _unsubscribe_patterns(self) -> list[Any]:
        return _compiled(self.unsubscribe_url_patterns)

    @cached_property
    def _machine_agents(self) -> list[Any]:
        return _compiled(self.machine_open_user_agents)

    @cached_property
    def _mapping_index(self) -> dict[str, dict[str, tuple[dict[str, Target], list[tuple[str, Target]]]]]:
        index: dict[str, dict[str, tuple[dict[str, Target], list[tuple[str, Target]]]]] = {}
        for provider, mapping in self.provider_mappings.items():
            per_field: dict[str, tuple[dict[str, Target], list[tuple[str, Target]]]] = {
                f: ({}, []) for f in MAPPING_FIELDS[provider]
            }
            for key, target in mapping.items():
                field_name, _, value = key.partition(":")
                exact, globs = per_field[field_name]
                if value.endswith("*"):
                    globs.append((value.lower(), target))
                else:
                    exact[value.lower()] = target
            for _exact, globs in per_field.values():
                globs.sort(key=lambda item: -len(item[0]))  # the longest (most specific) glob first
            index[provider] = per_field
        return index

    # ---- documents -------------------------------------------------------------------

    def to_document(self) -> dict[str, Any]:
        return {
            "version": self.version,
            "responses": {code: rule.to_document() for code, rule in self.responses.items()},
            "statistics_period_days": self.statistics_period_days,
            "count_machine_opens": self.count_machine_opens,
            "unsubscribe_from_all": self.unsubscribe_from_all,
            "unsubscribe_url_patterns": list(self.unsubscribe_url_patterns),
            "soft_bounce_limit": self.soft_bounce_limit,
            "machine_open_user_agents": list(self.machine_open_user_agents),
            "machine_open_window_seconds": self.machine_open_window_seconds,
            "machine_click_window_seconds": self.machine_click_window_seconds,
            "confirmation_timeout_hours": self.confirmation_timeout_hours,
            "confirmation_timeout_response": self.confirmation_timeout_response,
            "provider_mappings": {
                provider: {key: target.to_document() for key, target in mapping.items()}
                for provider, mapping in self.provider_mappings.items()
            },
        }

    @classmethod
    def from_document(cls, document: Mapping[str, Any]) -> Ruleset:
        """A complete stored document (as ``to_document`` wrote it)."""
        # A complete document states every mapping's reason: a bare code there has none (it is not a
        # patch, so it does not keep the reason of the default mapping it happens to replace).
        version = str(document.get("version", DEFAULT_VERSION)) if isinstance(document, Mapping) else None
        return _Patch(DEFAULT_RULESET, document, keep_reasons=False, check_patterns=False).apply(version)

    def patched(self, document: Mapping[str, Any], version: str | None = None) -> Ruleset:
        """This ruleset with ``document`` merged over it; raises ``InvalidRuleset``."""
        return _Patch(self, document).apply(version)

    def changes_from(self, other: Ruleset) -> dict[str, Any]:
        """The document fields whose values differ from ``other`` (for the rules history)."""
        mine, theirs = self.to_document(), other.to_document()
        changes: dict[str, Any] = {}
        for name in DOCUMENT_FIELDS:
            if name == "version":
                continue
            if name == "responses":
                diff = _dict_diff(mine[name], theirs[name])
                if diff:
                    changes[name] = diff
            elif name == "provider_mappings":
                # per provider, per key; a changed mapping is shown whole ({"code","reason"}), never a partial object
                diff = {}
                for provider in sorted(set(mine[name]) | set(theirs[name])):
                    sub = _dict_diff(mine[name].get(provider, {}), theirs[name].get(provider, {}))
                    if sub:
                        diff[provider] = sub
                if diff:
                    changes[name] = diff
            elif mine[name] != theirs[name]:
                changes[name] = mine[name]
        return changes


def _dict_diff(mine: dict[str, Any], theirs: dict[str, Any]) -> dict[str, Any]:
    diff: dict[str, Any] = {}
    for key in sorted(set(mine) | set(theirs)):
        a, b = mine.get(key), theirs.get(key)
        if a != b or (key in mine) != (key in theirs):
            diff[key] = a
    return diff


# The fold turns periods into timedeltas: larger values would crash every replay under the ruleset.
_MAX_DAYS = timedelta.max.days
_MAX_HOURS = _MAX_DAYS * 24


class _Patch:
    """Merges a ruleset document over a base and collects every error at once."""

    def __init__(self, base: Ruleset, document: Mapping[str, Any], keep_reasons: bool = True, check_patterns: bool = True):
        self.base = base
        self.document = document
        self.keep_reasons = keep_reasons  # a bare code keeps the reason of the mapping it replaces
        self.check_patterns = check_patterns  # a stored document loads whatever RE2 says (see Ruleset.refused_patterns)
        self.errors: dict[str, str] = {}

    def apply(self, version: str | None) -> Ruleset:
        doc = self.document
        if not isinstance(doc, Mapping):
            raise InvalidRuleset({"_schema": "a ruleset document is a JSON object"})
        for name in doc:
            if name not in DOCUMENT_FIELDS:
                self.errors[name] = "unknown field"
        values: dict[str, Any] = {
            "responses": self._responses(doc.get("responses")),
            "provider_mappings": self._mappings(doc.get("provider_mappings")),
            "statistics_period_days": self._count(doc, "statistics_period_days", nullable=True, maximum=_MAX_DAYS),
            "count_machine_opens": self._bool(doc, "count_machine_opens"),
            "unsubscribe_from_all": self._bool(doc, "unsubscribe_from_all"),
            "unsubscribe_url_patterns": self._patterns(doc, "unsubscribe_url_patterns"),
            "soft_bounce_limit": self._count(doc, "soft_bounce_limit", nullable=True, minimum=1),
            "machine_open_user_agents": self._patterns(doc, "machine_open_user_agents"),
            "machine_open_window_seconds": self._count(doc, "machine_open_window_seconds", nullable=True),
            "machine_click_window_seconds": self._count(doc, "machine_click_window_seconds", nullable=True),
            "confirmation_timeout_hours": self._hours(doc),
            "confirmation_timeout_response": self._timeout_response(doc),
        }
        if "version" in doc and not (isinstance(doc["version"], str) and doc["version"].strip()):
            self.errors["version"] = "a ruleset version is a non-empty string"
        if self.errors:
            raise InvalidRuleset(self.errors)
        chosen = version or (doc.get("version") if isinstance(doc.get("version"), str) else None) or self.base.version
        return Ruleset(version=chosen, **values)

    # -- fields ----------------------------------------------------------------------------

    def _bool(self, doc: Mapping[str, Any], name: str) -> bool:
        if name not in doc:
            return cast(bool, getattr(self.base, name))
        if not isinstance(doc[name], bool):
            self.errors[name] = "must be true or false"
            return cast(bool, getattr(self.base, name))
        return cast(bool, doc[name])

    def _count(
        self, doc: Mapping[str, Any], name: str, *, nullable: bool, minimum: int = 0, maximum: int | None = None
    ) -> int | None:
        if name not in doc:
            return cast("int | None", getattr(self.base, name))
        value = doc[name]
        if value is None and nullable:
            return None
        if isinstance(value, bool) or not isinstance(value, int) or value < minimum or (maximum is not None and value > maximum):
            self.errors[name] = (
                f"must be a whole number ≥ {minimum}"
                + (f" and ≤ {maximum}" if maximum is not None else "")
                + (" or null" if nullable else "")
            )
            return cast("int | None", getattr(self.base, name))
        return value

    def _hours(self, doc: Mapping[str, Any]) -> float:
        name = "confirmation_timeout_hours"
        if name not in doc:
            return self.base.confirmation_timeout_hours
        value = doc[name]
        if (
            isinstance(value, bool)
            or not isinstance(value, (int, float))
            or not math.isfinite(value)  # JSON parsers accept NaN and Infinity
            or not 0 <= value <= _MAX_HOURS
        ):
            self.errors[name] = f"must be a number of hours ≥ 0 and ≤ {_MAX_HOURS}"
            return self.base.confirmation_timeout_hours
        return value

    def _timeout_response(self, doc: Mapping[str, Any]) -> str:
        name = "confirmation_timeout_response"
        if name not in doc:
            return self.base.confirmation_timeout_response
        if not isinstance(doc[name], str) or doc[name] not in RESPONSES:
            self.errors[name] = f"unknown response code {doc[name]!r}"
            return self.base.confirmation_timeout_response
        return cast(str, doc[name])

    def _patterns(self, doc: Mapping[str, Any], name: str) -> tuple[str, ...]:
        if name not in doc:
            return cast("tuple[str, ...]", getattr(self.base, name))
        value = doc[name]
        if not isinstance(value, list) or not all(isinstance(p, str) for p in value):
            self.errors[name] = "must be a list of regular expressions"
            return cast("tuple[str, ...]", getattr(self.base, name))
        if self.check_patterns:
            for i, pattern in enumerate(value):
                error = pattern_error(pattern)
                if error is not None:
                    self.errors[f"{name}.{i}"] = error
        return tuple(value)

    def _responses(self, patch: Any) -> dict[str, ResponseRule]:
        merged = dict(self.base.responses)
        if patch is None:
            return merged
        if not isinstance(patch, Mapping):
            self.errors["responses"] = "must be an object of response code → {final, priority}"
            return merged
        for code, rule in patch.items():
            where = f"responses.{code}"
            if code not in RESPONSES:
                self.errors[where] = "unknown response code"
                continue
            if not isinstance(rule, Mapping):
                self.errors[where] = "must be an object {final, priority}"
                continue
            unknown = set(rule) - {"final", "priority"}
            if unknown:
                self.errors[where] = f"unknown fields: {', '.join(sorted(unknown))}"
                continue
            old = merged[code]
            final = rule.get("final", old.final)
            if not isinstance(final, bool):
                self.errors[f"{where}.final"] = "must be true or false"
                continue
            has_priority = "priority" in rule and rule["priority"] is not None
            priority = rule.get("priority")
            if has_priority and (isinstance(priority, bool) or not isinstance(priority, int)):
                self.errors[f"{where}.priority"] = "must be a whole number"
                continue
            if final:
                if has_priority:
                    self.errors[f"{where}.priority"] = "a final response has no priority"
                    continue
                merged[code] = ResponseRule(True, None)
            else:
                if not has_priority:
                    if "final" in rule or old.final:
                        self.errors[f"{where}.priority"] = "a non-final response needs a priority"
                        continue
                    priority = old.priority
                merged[code] = ResponseRule(False, priority)
        return merged

    def _mappings(self, patch: Any) -> dict[str, dict[str, Target]]:
        merged = {p: dict(m) for p, m in self.base.provider_mappings.items()}
        if patch is None:
            return merged
        if not isinstance(patch, Mapping):
            self.errors["provider_mappings"] = "must be an object of provider → {field:value → code}"
            return merged
        for provider, entries in patch.items():
            if provider not in MAPPING_FIELDS:
                self.errors[f"provider_mappings.{provider}"] = f"unknown provider (one of {', '.join(MAPPING_FIELDS)})"
                continue
            if not isinstance(entries, Mapping):
                self.errors[f"provider_mappings.{provider}"] = "must be an object"
                continue
            for key, value in entries.items():
                where = f"provider_mappings.{provider}.{key}"
                field_name, sep, status = str(key).partition(":")
                if not sep or not status:
                    self.errors[where] = "a mapping key is field:value"
                    continue
                if field_name not in MAPPING_FIELDS[provider]:
                    self.errors[where] = f"unknown key field {field_name!r} (one of {', '.join(MAPPING_FIELDS[provider])})"
                    continue
                kept = self._replaced_reason(provider, key, merged) if self.keep_reasons else None
                target = self._target(where, value, kept)
                if target is not None or value is None:
                    merged[provider][key] = target if target is not None else Target(None)
        return merged

    def _replaced_reason(self, provider: str, key: str, merged: dict[str, dict[str, Target]]) -> str | None:
        if key in merged[provider]:
            return merged[provider][key].reason
        field_name, _, value = key.partition(":")
        if value.endswith("*"):
            return None
        return self.base.map(provider, {field_name: value}).reason

    def _target(self, where: str, value: Any, kept_reason: str | None) -> Target | None:
        if value is None:
            return None
        if isinstance(value, str):
            if value not in RESPONSES:
                self.errors[where] = f"unknown response code {value!r}"
                return None
            return Target(value, kept_reason)
        if isinstance(value, Mapping):
            code, reason, effect = value.get("code"), value.get("reason"), value.get("contact_effect")
            if set(value) - {"code", "reason", "contact_effect"}:
                self.errors[where] = "a mapping object has only code, reason and contact_effect"
            elif code is None and effect is None:
                self.errors[where] = "a mapping object names a code, a contact_effect or both (null alone: informational)"
            elif code is not None and (not isinstance(code, str) or code not in RESPONSES):
                self.errors[where] = f"unknown response code {code!r}"
            elif reason is not None and reason not in REASONS:
                self.errors[where] = f"unknown reason {reason!r} (one of {', '.join(REASONS)})"
            elif effect is not None and effect not in CONTACT_EFFECTS:
                self.errors[where] = f"unknown contact_effect {effect!r} (one of {', '.join(CONTACT_EFFECTS)}, or absent)"
            else:
                return Target(code, reason, effect)
            return None
        self.errors[where] = "a mapping is a response code, {code, reason, contact_effect} or null"
        return None


DEFAULT_RULESET = Ruleset()
assert set(DEFAULT_RULESET.responses) == set(CODES)

# The built-in rulesets, by version, oldest first. Version 1 never changes (stored histories were folded under
# it); "builtin-2" is version 1 with the mappings of issue 17 (``domain.mappings.BUILTIN_MAPPINGS_2``). A new
# database starts on the latest; an existing one keeps its active rules and is offered the latest.
BUILTIN_RULESETS: dict[str, Ruleset] = {
    DEFAULT_VERSION: DEFAULT_RULESET,
    LATEST_BUILTIN_VERSION: Ruleset(
        version=LATEST_BUILTIN_VERSION, provider_mappings={p: dict(m) for p, m in BUILTIN_MAPPINGS_2.items()}
    ),
}
LATEST_BUILTIN = BUILTIN_RULESETS[LATEST_BUILTIN_VERSION]
assert all(v == DEFAULT_VERSION or is_builtin_name(v) for v in BUILTIN_RULESETS)
