"""common.py: the regenerate ladder, atomic writes, file arguments and error messages."""

from __future__ import annotations

import builtins
import errno
import os
import stat

import pytest
from ansible.module_utils.basic import AnsibleModule

from ansible_collections.mcdev.credentials.plugins.module_utils import _io, common
from ansible_collections.mcdev.credentials.plugins.module_utils.common import InputError
from ansible_collections.mcdev.credentials.tests.unit.plugins.modules.utils import patch_module_args

A, M, D, U = common.EXISTING_ABSENT, common.EXISTING_MATCHES, common.EXISTING_DIFFERS, common.EXISTING_UNREADABLE


def make_module(**params):
    """A real AnsibleModule with the file common arguments, built in-process."""
    check_mode = params.pop("check_mode", False)
    with patch_module_args(dict(params, _ansible_check_mode=check_mode)):
        return AnsibleModule(argument_spec={}, add_file_common_args=True, supports_check_mode=True)


def mode_of(path):
    return stat.S_IMODE(os.stat(path).st_mode)


# ------------------------------------------------------------------ ladder

@pytest.mark.parametrize("regenerate, existing, expected", [
    ("never", A, True), ("never", M, False), ("never", D, False), ("never", U, "regenerate=full_idempotence"),
    ("fail", A, True), ("fail", M, False), ("fail", D, "regenerate=partial_idempotence"), ("fail", U, "regenerate=full_idempotence"),
    ("partial_idempotence", A, True), ("partial_idempotence", M, False), ("partial_idempotence", D, True),
    ("partial_idempotence", U, "regenerate=full_idempotence"),
    ("full_idempotence", A, True), ("full_idempotence", M, False), ("full_idempotence", D, True), ("full_idempotence", U, True),
    ("always", A, True), ("always", M, True), ("always", D, True), ("always", U, True),
])
def test_needs_regeneration_ladder(regenerate, existing, expected):
    if isinstance(expected, str):
        with pytest.raises(InputError, match=expected) as refused:
            common.needs_regeneration(regenerate, existing, what="the private key at /k.pem", reason="it is RSA 3072")
        assert "the private key at /k.pem" in str(refused.value) and "RSA 3072" in str(refused.value)
    else:
        assert common.needs_regeneration(regenerate, existing) is expected


@pytest.mark.parametrize("existing", [M, D, U])
def test_force_is_always(existing):
    assert common.needs_regeneration("fail", existing, force=True) is True


def test_needs_regeneration_rejects_unknown_values():
    with pytest.raises(InputError, match="regenerate=sometimes"):
        common.needs_regeneration("sometimes", M)
    with pytest.raises(ValueError):
        common.needs_regeneration("fail", "weird")


# ------------------------------------------------------------------- paths

def test_check_parent_dir(tmp_path):
    common.check_parent_dir(str(tmp_path / "key.pem"), "privatekey_path")
    with pytest.raises(InputError, match="^privatekey_path: the directory .*/nope does not exist"):
        common.check_parent_dir(str(tmp_path / "nope" / "key.pem"), "privatekey_path")
    with pytest.raises(InputError, match="^csr_path: .* is a directory"):
        common.check_parent_dir(str(tmp_path), "csr_path")


def test_check_parent_dir_not_writable(tmp_path, monkeypatch):
    # Tests run as root, for whom every directory is writable; simulate the access check's answer.
    monkeypatch.setattr(common.os, "access", lambda path, how: False)
    with pytest.raises(InputError, match="dest_path: the directory .* is not writable"):
        common.check_parent_dir(str(tmp_path / "k.p12"), "dest_path")


def test_read_if_exists_and_required(tmp_path):
    path = tmp_path / "f"
    assert common.read_if_exists(str(path), "src_path") is None
    with pytest.raises(InputError, match="^src_path: .*/f does not exist"):
        common.read_required(str(path), "src_path")
    path.write_bytes(b"data")
    assert common.read_required(str(path), "src_path") == b"data"
    with pytest.raises(InputError, match="is a directory"):
        common.read_if_exists(str(tmp_path), "src_path")


def test_read_if_exists_permission_denied(tmp_path, monkeypatch):
    # As root, chmod 000 does not stop reads; simulate the kernel's refusal instead.
    target = str(tmp_path / "secret.pem")

    def refuse(path, *args, **kwargs):
        raise PermissionError(errno.EACCES, "Permission denied", path)

    monkeypatch.setattr(builtins, "open", refuse)
    with pytest.raises(InputError, match="privatekey_path: .*secret.pem cannot be read \\(permission denied\\)"):
        common.read_if_exists(target, "privatekey_path")


# ----------------------------------------------------------- atomic writes

def test_write_atomically_replaces_file_and_leaves_no_temp(tmp_path):
    path = tmp_path / "key.pem"
    path.write_bytes(b"old")
    old_inode = os.stat(path).st_ino
    _io.write_atomically(str(path), b"new")
    assert path.read_bytes() == b"new"
    assert os.stat(path).st_ino != old_inode  # a rename, not an in-place rewrite
    assert mode_of(path) == 0o600  # the temp file's mode travels with the rename
    assert sorted(os.listdir(tmp_path)) == ["key.pem"]


def test_write_atomically_cleans_up_on_failure(tmp_path):
    target = tmp_path / "dir"
    target.mkdir()
    with pytest.raises(OSError):
        _io.write_atomically(str(target), b"data")  # cannot rename a file over a directory
    assert sorted(os.listdir(tmp_path)) == ["dir"]


def test_atomic_write_applies_default_and_task_modes(tmp_path):
    key = str(tmp_path / "key.pem")
    csr = str(tmp_path / "req.csr")
    module = make_module()
    assert common.atomic_write(module, key, b"k", common.PRIVATE_MODE)
    assert common.atomic_write(module, csr, b"c", common.PUBLIC_MODE)
    assert (mode_of(key), mode_of(csr)) == (0o600, 0o644)
    common.atomic_write(make_module(mode="0640"), key, b"k2")
    assert mode_of(key) == 0o640


def test_apply_file_args_check_mode_predicts_without_touching(tmp_path):
    path = tmp_path / "key.pem"
    path.write_bytes(b"k")
    os.chmod(path, 0o644)
    assert common.apply_file_args(make_module(check_mode=True), str(path), common.PRIVATE_MODE, False) is True
    assert mode_of(path) == 0o644
    assert common.apply_file_args(make_module(), str(path), common.PRIVATE_MODE, False) is True
    assert mode_of(path) == 0o600
    assert common.apply_file_args(make_module(), str(path), common.PRIVATE_MODE, False) is False
    assert common.apply_file_args(make_module(check_mode=True), str(path), common.PRIVATE_MODE, False) is False


def test_file_args_for_keeps_task_values(tmp_path):
    args = common.file_args_for(make_module(owner="root", mode="0600"), str(tmp_path / "x"), common.PUBLIC_MODE)
    assert args["mode"] == "0600" and args["owner"] == "root" and args["path"] == str(tmp_path / "x")
    assert common.file_args_for(make_module(), str(tmp_path / "x"), common.PUBLIC_MODE)["mode"] == 0o644


def test_backup_local(tmp_path):
    module = make_module()
    assert common.backup_local(module, str(tmp_path / "absent")) is None
    path = tmp_path / "key.pem"
    path.write_bytes(b"secret")
    os.chmod(path, 0o600)
    backup = common.backup_local(module, str(path))
    assert backup != str(path) and open(backup, "rb").read() == b"secret"
    assert mode_of(backup) == 0o600
