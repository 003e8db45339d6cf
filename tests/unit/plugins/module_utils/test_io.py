"""_io: the one writer of files (issue 12's "atomic writes four times"): modes, owners, planted links, no temporary
file left on failure, write_if_changed, and no other plugin file making its own temporary files."""

from __future__ import annotations

import os

import pytest

from ansible_collections.mcdev.credentials.plugins.module_utils import _io


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
