"""_io: the one writer of files (issue 12's "atomic writes four times"): modes, owners, planted links, no temporary
file left on failure, write_if_changed, and no other plugin file making its own temporary files."""

from __future__ import annotations

import os
import re

import pytest

from ansible_collections.mcdev.credentials.plugins.module_utils import _io

PLUGINS = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", "..", "..", "..", "plugins"))


def test_the_file_gets_its_mode_whatever_the_umask(tmp_path):
    old = os.umask(0o077)
    try:
        _io.write_atomically(str(tmp_path / "report.html"), b"<p>", 0o644)
        _io.write_atomically(str(tmp_path / "key.pem"), b"k")
    finally:
        os.umask(old)
    assert os.stat(tmp_path / "report.html").st_mode & 0o777 == 0o644
    assert os.stat(tmp_path / "key.pem").st_mode & 0o777 == 0o600
    assert sorted(os.listdir(tmp_path)) == ["key.pem", "report.html"]


def test_a_planted_link_is_replaced_not_followed(tmp_path):
    outside = tmp_path / "outside"
    outside.write_bytes(b"keep")
    (tmp_path / "ledger.json").symlink_to(outside)
    _io.write_atomically(str(tmp_path / "ledger.json"), b"{}")
    assert outside.read_bytes() == b"keep" and not os.path.islink(tmp_path / "ledger.json")


def test_a_failed_write_leaves_the_old_file_and_no_temporary(tmp_path):
    (tmp_path / "fleet.json").write_bytes(b"old")
    with pytest.raises(TypeError):
        _io.write_atomically(str(tmp_path / "fleet.json"), "not bytes")
    assert (tmp_path / "fleet.json").read_bytes() == b"old" and os.listdir(tmp_path) == ["fleet.json"]


def test_write_if_changed_writes_only_a_difference(tmp_path):
    path = str(tmp_path / "fleet.json")
    assert _io.write_if_changed(path, b"{}") is True
    before = os.stat(path).st_ino
    assert _io.write_if_changed(path, b"{}") is False and os.stat(path).st_ino == before
    assert _io.write_if_changed(path, b"{\"a\": 1}") is True and os.stat(path).st_ino != before


def test_no_other_plugin_file_makes_its_own_temporary_files():
    pattern = re.compile(r"mkstemp\(|os\.fsync\((handle|fd)\b|O_EXCL \| os\.O_NOFOLLOW")
    found = []
    for folder, _dirs, names in os.walk(PLUGINS):
        for name in names:
            path = os.path.join(folder, name)
            if name.endswith(".py") and name != "_io.py":
                with open(path, encoding="utf-8") as handle:
                    found += ["%s:%d" % (os.path.relpath(path, PLUGINS), number)
                              for number, line in enumerate(handle, 1) if pattern.search(line)]
    assert found == [], "atomic writes outside plugins/module_utils/_io.py: %s" % found
