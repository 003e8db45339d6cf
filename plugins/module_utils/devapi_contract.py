# -*- coding: utf-8 -*-
# Copyright: mcdev.credentials contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The Developers API contract the client follows: the defaults of devapi_contract_data, with the entries a
user's contract file (YAML or JSON) overrides.

PRIVATE to this collection: the API may change without notice.

A contract file has the sections and entries of the defaults, and gives only what differs::

    endpoints:
      list_credentials:
        path: /projects/{project_id}/keys
        evidence: seen
    create_fields:
      alias: description

Everything is checked when the file is read; a wrong key or shape is refused naming it, before any call.
"""

from __future__ import annotations

import copy
import json
import re

from ansible_collections.mcdev.credentials.plugins.module_utils.errors import CollectionError
from ansible_collections.mcdev.credentials.plugins.module_utils.devapi_contract_data import CONTRACT as DEFAULT_CONTRACT

EVIDENCE = ("seen", "third-party", "assumed")
# The evidence of an entry a user changed without saying where the new value comes from.
OVERRIDE_EVIDENCE = "override"
METHODS = ("GET", "POST", "PUT", "PATCH", "DELETE")
_PLACEHOLDER = re.compile(r"{([^{}]*)}")
_BAD_NAME = re.compile(r"[\s\x00-\x1f\x7f]")
# What an entry holds besides evidence and note; every other section holds a name.
_ENTRY_FIELDS = {"endpoints": ("method", "path"), "values": ("value",), "reason_codes": ("value",)}
# Values the client reads back: which entries answer for which record field.
_VALUE_GROUPS = {
    "type": ("type_mtls", "type_signing"),
    "status": ("status_active", "status_revoked"),
    "oauth_version": ("oauth_version_1", "oauth_version_2"),
    "environment": ("environment_sandbox", "environment_production"),
}


class ContractError(CollectionError, ValueError):
    """A contract file that cannot be used; str() names the file, the key and what to change."""

    def __init__(self, source, key, problem):
        self.key = key
        super().__init__("%s: %s %s" % (source, key, problem) if key else "%s: %s" % (source, problem))


def _fields_of(section):
    return _ENTRY_FIELDS.get(section, ("name",))


class Contract:
    """The contract in force for one client: lookups by section and entry, and what was overridden."""

    def __init__(self, entries=None, overridden=(), source=None):
        self.entries = entries if entries is not None else copy.deepcopy(DEFAULT_CONTRACT)
        self.overridden = list(overridden)
        self.source = source
        # API value -> the client's own word (the default), per value group.
        self._words = {group: {self.value(entry): DEFAULT_CONTRACT["values"][entry]["value"] for entry in members}
                       for group, members in _VALUE_GROUPS.items()}

    @classmethod
    def load(cls, path=None):
        """The defaults, with the contract file at ``path`` (when given) merged over them."""
        if not path:
            return cls()
        try:
            with open(path, "rb") as handle:
                text = handle.read().decode("utf-8")
        except (OSError, UnicodeDecodeError) as exc:
            raise ContractError(path, None, "cannot be read (%s); point contract_path at a YAML or JSON file"
                                % (getattr(exc, "strerror", None) or exc)) from None
        entries, overridden = merge(DEFAULT_CONTRACT, _parse(text, path), path)
        return cls(entries, overridden, path)

    def endpoint(self, op):
        """(method, path template) of an operation."""
        entry = self.entries["endpoints"][op]
        return entry["method"], entry["path"]

    def name(self, section, entry):
        """The API's name for a query parameter, body field or record field."""
        return self.entries[section][entry]["name"]

    def value(self, entry):
        return self.entries["values"][entry]["value"]

    def reason_code(self, entry):
        return self.entries["reason_codes"][entry]["value"]

    def our_word(self, group, api_value):
        """The client's own word (TYPE MTLS, status ACTIVE, ...) for a value the API sent; unknown ones as sent."""
        if api_value is None:
            return None
        return self._words[group].get(api_value, api_value)

    def api_value(self, group, word):
        """The value the API takes for one of the client's own words (inverse of our_word)."""
        for entry in _VALUE_GROUPS[group]:
            if DEFAULT_CONTRACT["values"][entry]["value"] == word:
                return self.value(entry)
        return word

    def read(self, section, data):
        """{entry: value} of a record (credential_fields, project_fields) as the API sent it."""
        return {entry: data.get(spec["name"]) for entry, spec in self.entries[section].items()}

    def describe(self, op):
        """How an error names the entry a failed call followed."""
        method, path = self.endpoint(op)
        return "endpoints.%s (%s %s, %s)" % (op, method, path, self.entries["endpoints"][op]["evidence"])

    def evidence(self, section, entry):
        return self.entries[section][entry]["evidence"]


def _parse(text, source):
    try:
        import yaml  # pylint: disable=import-outside-toplevel
    except ImportError:  # PyYAML comes with ansible-core; a bare host still reads JSON
        try:
            return json.loads(text)
        except ValueError as exc:
            raise ContractError(source, None, "is not JSON (%s), and PyYAML is not installed to read YAML" % exc) from None
    try:
        return yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = " at line %d" % (mark.line + 1) if mark is not None else ""
        raise ContractError(source, None, "is not valid YAML%s (%s)" % (where, getattr(exc, "problem", None) or exc)) from None


def merge(defaults, override, source):
    """(entries, overridden keys) of ``override`` (parsed file content) merged over ``defaults``."""
    entries = copy.deepcopy(defaults)
    if override is None:
        return entries, []
    if not isinstance(override, dict):
        raise ContractError(source, None, "must be a mapping of contract sections (%s)" % ", ".join(defaults))
    overridden = []
    for section, items in override.items():
        if section not in defaults:
            raise ContractError(source, section, "is not a contract section; use one of %s" % ", ".join(defaults))
        if not isinstance(items, dict):
            raise ContractError(source, section, "must be a mapping of its entries (%s)" % ", ".join(defaults[section]))
        for entry, given in items.items():
            key = "%s.%s" % (section, entry)
            if entry not in defaults[section]:
                raise ContractError(source, key, "is not a contract entry; %s has %s"
                                    % (section, ", ".join(defaults[section])))
            overridden.extend(_apply(source, key, section, entries[section][entry], given))
    return entries, overridden


def _apply(source, key, section, entry, given):
    """Merge one entry's override into ``entry``; the keys of what changed."""
    fields = _fields_of(section)
    if len(fields) == 1 and isinstance(given, str):
        given = {fields[0]: given}
    if not isinstance(given, dict):
        shape = "a string or a mapping with %s" % fields[0] if len(fields) == 1 else "a mapping with %s" % " and/or ".join(fields)
        raise ContractError(source, key, "must be %s (and optionally evidence, note)" % shape)
    for field in given:
        if field not in fields + ("evidence", "note"):
            raise ContractError(source, "%s.%s" % (key, field), "is not a field of a contract entry; use %s"
                                % ", ".join(fields + ("evidence", "note")))
    changed = []
    for field in fields:
        if field in given:
            value = _checked(source, "%s.%s" % (key, field), field, given[field], entry[field])
            if value != entry[field]:
                entry[field] = value
                changed.append(key if len(fields) == 1 else "%s.%s" % (key, field))
    evidence = given.get("evidence")
    if evidence is not None:
        if evidence not in EVIDENCE:
            raise ContractError(source, "%s.evidence" % key, "must be one of %s, got %r" % (", ".join(EVIDENCE), evidence))
        entry["evidence"] = evidence
    elif changed:
        entry["evidence"] = OVERRIDE_EVIDENCE
    if given.get("note") is not None:
        entry["note"] = str(given["note"])
    return changed


def _checked(source, key, field, value, default):
    if not isinstance(value, str) or not value.strip():
        raise ContractError(source, key, "must be a non-empty string, got %r" % (value,))
    value = value.strip()
    if field == "method":
        if value.upper() not in METHODS:
            raise ContractError(source, key, "must be one of %s, got %r" % (", ".join(METHODS), value))
        return value.upper()
    if field == "path":
        wanted = set(_PLACEHOLDER.findall(default))
        given = set(_PLACEHOLDER.findall(value))
        if not value.startswith("/") or "?" in value or "#" in value:
            raise ContractError(source, key, "must be a path after api_url starting with /, without a query, got %r"
                                % value)
        if given != wanted:
            raise ContractError(source, key, "must hold exactly the placeholders %s (the ids the client fills in), got %r"
                                % (", ".join("{%s}" % name for name in sorted(wanted)), value))
        return value
    if field == "name" and _BAD_NAME.search(value):
        raise ContractError(source, key, "must be a field name without spaces or control characters, got %r" % value)
    return value
