"""Host-side deploy layout: versioned folders, atomic flip, rollback, symlink refusal."""

import json
import os
import stat

import pytest

from ansible_collections.mcdev.credentials.plugins.module_utils import deploy
from ansible_collections.mcdev.credentials.plugins.module_utils.deploy import DeployError, Layout


def _files(tag):
    return {"key.p12": b"p12-" + tag.encode(), "cert.pem": b"cert-" + tag.encode()}


def _deploy(base, version, tag=None, name="app", **kw):
    with Layout(str(base), name) as layout:
        return layout.deploy(version, _files(tag or version), {"fingerprint": "fp-" + version}, **kw)


def test_first_deploy_writes_version_and_flips(tmp_path):
    result = _deploy(tmp_path, "c1")
    assert result["changed"] and result["flipped"] and result["previous"] is None
    root = tmp_path / "app"
    assert os.readlink(root / "current") == "versions/c1"
    vdir = root / "versions" / "c1"
    assert (vdir / "key.p12").read_bytes() == b"p12-c1"
    assert stat.S_IMODE(os.stat(vdir / "key.p12").st_mode) == 0o600
    assert stat.S_IMODE(os.stat(vdir / "cert.pem").st_mode) == 0o644
    meta = json.loads((vdir / "meta.json").read_text())
    assert meta["credential_id"] == "c1" and meta["complete"] is True and meta["previous"] is None
    assert meta["files"]["key.p12"] == deploy.sha256_hex(b"p12-c1")
    assert "p12-c1" not in (vdir / "meta.json").read_text()
    # no temporary files left behind
    assert sorted(os.listdir(vdir)) == ["cert.pem", "key.p12", "meta.json"]
    assert sorted(os.listdir(root)) == ["current", "versions"]


def test_second_run_is_a_no_op(tmp_path):
    _deploy(tmp_path, "c1")
    before = os.stat(tmp_path / "app" / "versions" / "c1" / "key.p12").st_ino
    result = _deploy(tmp_path, "c1", tag="other-random-p12-bytes")
    assert not result["changed"] and not result["flipped"]
    assert os.stat(tmp_path / "app" / "versions" / "c1" / "key.p12").st_ino == before


def test_new_version_records_previous_and_rollback_returns(tmp_path):
    _deploy(tmp_path, "c1")
    result = _deploy(tmp_path, "c2")
    assert result["previous"] == "c1" and result["current"] == "c2"
    assert os.readlink(tmp_path / "app" / "current") == "versions/c2"
    with Layout(str(tmp_path), "app") as layout:
        assert layout.meta("c2")["previous"] == "c1"
        back = layout.rollback()
        assert back["changed"] and back["current"] == "c1" and back["previous"] == "c2"
    assert os.readlink(tmp_path / "app" / "current") == "versions/c1"
    # rolling back to where we are is a no-op
    with Layout(str(tmp_path), "app") as layout:
        assert not layout.rollback("c1")["changed"]


def test_corrupted_version_is_rewritten(tmp_path):
    _deploy(tmp_path, "c1")
    (tmp_path / "app" / "versions" / "c1" / "cert.pem").write_bytes(b"tampered")
    result = _deploy(tmp_path, "c1")
    assert result["changed"] and result["written"] == ["cert.pem", "key.p12"]
    assert (tmp_path / "app" / "versions" / "c1" / "cert.pem").read_bytes() == b"cert-c1"


def test_half_written_version_without_meta_is_rewritten(tmp_path):
    vdir = tmp_path / "app" / "versions" / "c1"
    vdir.mkdir(parents=True)
    (vdir / "key.p12").write_bytes(b"partial")
    result = _deploy(tmp_path, "c1")
    assert result["changed"] and (vdir / "key.p12").read_bytes() == b"p12-c1"


def test_check_mode_writes_nothing(tmp_path):
    _deploy(tmp_path, "c1")
    result = _deploy(tmp_path, "c2", check_mode=True)
    assert result["changed"] and result["flipped"]
    assert os.readlink(tmp_path / "app" / "current") == "versions/c1"
    assert not (tmp_path / "app" / "versions" / "c2").exists()


def test_planted_symlink_for_credential_folder_is_refused(tmp_path):
    target = tmp_path / "elsewhere"
    target.mkdir()
    base = tmp_path / "base"
    base.mkdir()
    os.symlink(str(target), str(base / "app"))
    with pytest.raises(DeployError, match="symlink"):
        _deploy(base, "c1")
    assert os.listdir(target) == []


def test_planted_symlink_for_version_folder_is_refused(tmp_path):
    _deploy(tmp_path, "c1")
    evil = tmp_path / "evil"
    evil.mkdir()
    os.symlink(str(evil), str(tmp_path / "app" / "versions" / "c2"))
    with pytest.raises(DeployError, match="symlink"):
        _deploy(tmp_path, "c2")
    assert os.listdir(evil) == []
    assert os.readlink(tmp_path / "app" / "current") == "versions/c1"


def test_planted_symlink_for_key_file_is_not_followed(tmp_path):
    _deploy(tmp_path, "c1")
    victim = tmp_path / "victim"
    victim.write_bytes(b"precious")
    vdir = tmp_path / "app" / "versions" / "c2"
    vdir.mkdir()
    os.symlink(str(victim), str(vdir / "key.p12"))
    _deploy(tmp_path, "c2")
    assert victim.read_bytes() == b"precious"
    assert not os.path.islink(vdir / "key.p12")
    assert (vdir / "key.p12").read_bytes() == b"p12-c2"


def test_current_that_is_not_a_symlink_is_refused(tmp_path):
    (tmp_path / "app" / "current").mkdir(parents=True)
    with pytest.raises(DeployError, match="not a symlink"):
        _deploy(tmp_path, "c1")


def test_current_pointing_outside_versions_is_refused(tmp_path):
    (tmp_path / "app").mkdir()
    os.symlink("/etc", str(tmp_path / "app" / "current"))
    with pytest.raises(DeployError, match="versions/<credential-id>"):
        _deploy(tmp_path, "c1")


@pytest.mark.parametrize("bad", ["../x", "a/b", ".hidden", "", "..", "x" * 200])
def test_unsafe_ids_are_refused(tmp_path, bad):
    with pytest.raises(DeployError, match="not a safe folder name"):
        _deploy(tmp_path, bad)


def test_redeploy_by_id_needs_the_version_on_the_host(tmp_path):
    _deploy(tmp_path, "c1")
    with Layout(str(tmp_path), "app") as layout:
        assert not layout.deploy("c1", {"key.p12": None, "cert.pem": None}, {})["changed"]
        with pytest.raises(DeployError, match="no content"):
            layout.deploy("c9", {"key.p12": None, "cert.pem": None}, {})


def test_same_id_with_different_fingerprint_is_refused(tmp_path):
    _deploy(tmp_path, "c1")
    with Layout(str(tmp_path), "app") as layout:
        with pytest.raises(DeployError, match="different credential"):
            layout.deploy("c1", _files("c1"), {"fingerprint": "something-else"})


def test_rollback_refuses_missing_or_expired_target(tmp_path):
    with Layout(str(tmp_path), "app") as layout:
        layout.deploy("old", _files("old"), {"expires": "2000-01-01T00:00:00Z"})
        layout.deploy("new", _files("new"), {"expires": "2999-01-01T00:00:00Z"})
        with pytest.raises(DeployError, match="expired"):
            layout.rollback()
        assert layout.rollback(allow_expired=True)["current"] == "old"
        with pytest.raises(DeployError, match="missing or incomplete"):
            layout.rollback("nope")


def test_rollback_without_previous_is_a_no_op(tmp_path):
    _deploy(tmp_path, "c1")
    with Layout(str(tmp_path), "app") as layout:
        result = layout.rollback()
    assert not result["changed"] and "nothing to roll back" in result["msg"]


def test_prune_keeps_current_and_previous(tmp_path):
    for version in ("c1", "c2", "c3", "c4"):
        _deploy(tmp_path, version, keep=2)
    assert sorted(os.listdir(tmp_path / "app" / "versions")) == ["c3", "c4"]
    with Layout(str(tmp_path), "app") as layout:
        assert layout.meta("c4")["previous"] == "c3"


def test_facts(tmp_path):
    _deploy(tmp_path, "c1")
    with Layout(str(tmp_path), "app", create=False) as layout:
        facts = layout.facts()
    assert facts["current"] == "c1" and facts["versions"] == ["c1"] and facts["meta"]["fingerprint"] == "fp-c1"
    with Layout(str(tmp_path), "missing", create=False) as layout:
        assert layout.root_fd is None


def test_relative_base_is_refused():
    with pytest.raises(DeployError, match="absolute"):
        Layout("relative/path", "app")


def test_stamp_verified_and_host_facts(tmp_path):
    _deploy(tmp_path, "c1")
    _deploy(tmp_path, "c2")
    with Layout(str(tmp_path), "app") as layout:
        facts = layout.host_facts()
        assert facts["current_id"] == "c2" and facts["verified_at"] is None
        assert layout.stamp_verified("c2", "FP-C2")["changed"]
        assert not layout.stamp_verified("c2", "fp-c2")["changed"]
        facts = layout.host_facts()
        assert facts["verified_fingerprint"] == "fp-c2" and facts["verified_at"]
        assert [v["credential_id"] for v in facts["versions"]] == ["c1", "c2"]
        with pytest.raises(DeployError, match="current points at c2"):
            layout.stamp_verified("c1")
        with pytest.raises(DeployError, match="not the one deployed"):
            layout.stamp_verified("c2", "other")
    # a redeploy of a new version starts unverified
    _deploy(tmp_path, "c3")
    with Layout(str(tmp_path), "app") as layout:
        assert layout.host_facts()["verified_at"] is None


def test_rollback_only_from(tmp_path):
    _deploy(tmp_path, "c1")
    _deploy(tmp_path, "c2")
    with Layout(str(tmp_path), "app") as layout:
        assert not layout.rollback(only_from="c3")["changed"]
        assert layout.current() == "c2"
        assert layout.rollback(only_from="c2")["current"] == "c1"
