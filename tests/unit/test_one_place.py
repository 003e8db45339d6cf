"""One concept, one place (issue 12): time is read and written only in _time.py, files only in _io.py, "active" is
decided only by inventory.is_active, and every exception class of the collection has errors.CollectionError as its
root. Each check lists what breaks the rule."""

from __future__ import annotations

import ast
import os
import re

PLUGINS = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", "..", "plugins"))
# Not errors: signals a caller acts on (the person at the portal; the client's own retry bookkeeping).
SIGNALS = {"AwaitingPerson", "_AmbiguousOutcome", "_TransportFailure"}


def plugin_files():
    for folder, _dirs, names in os.walk(PLUGINS):
        for name in sorted(names):
            if name.endswith(".py"):
                path = os.path.join(folder, name)
                with open(path, encoding="utf-8") as handle:
                    yield os.path.relpath(path, PLUGINS), handle.read()


def lines_matching(pattern, home):
    """'file:line' of every line of plugins/ matching pattern, outside the concept's home file."""
    regex = re.compile(pattern)
    return ["%s:%d" % (path, number) for path, text in plugin_files() if path != home
            for number, line in enumerate(text.splitlines(), 1) if regex.search(line)]


def test_time_is_read_written_and_taken_only_in_time():
    found = lines_matching(r"fromisoformat|datetime\.now\(|%Y-%m-%dT%H:%M:%SZ|timezone\.utc", "module_utils/_time.py")
    assert found == [], "time handling outside plugins/module_utils/_time.py: %s" % found


def test_files_are_replaced_only_by_io():
    found = lines_matching(r"mkstemp\(|os\.fsync\((handle|fd)\b|O_EXCL \| os\.O_NOFOLLOW", "module_utils/_io.py")
    assert found == [], "atomic writes outside plugins/module_utils/_io.py: %s" % found


def test_active_is_defined_only_in_inventory():
    found = lines_matching(r"""==\s*["']ACTIVE["']""", "module_utils/inventory.py")
    assert found == [], "'active' decided outside inventory.is_active: %s" % found


def test_every_exception_class_has_the_one_root():
    """A class deriving from Exception (or ValueError...) directly is a second root: it would need its own handler."""
    roots = []
    for path, text in plugin_files():
        for node in ast.walk(ast.parse(text)):
            if isinstance(node, ast.ClassDef) and node.name not in SIGNALS | {"CollectionError"}:
                bases = {getattr(base, "id", getattr(base, "attr", None)) for base in node.bases}
                if bases & {"Exception", "ValueError", "RuntimeError", "OSError"} and "CollectionError" not in bases:
                    roots.append("%s:%s" % (path, node.name))
    assert roots == [], "exception classes outside errors.CollectionError: %s" % roots
