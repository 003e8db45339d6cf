"""R5: private keys and keystores are 0600 when written, converted, backed up and deployed; mc_deploy never
follows a symlink planted in a host's credential folder."""
import json
import os
import shutil
import stat
import tempfile

import pytest
import yaml

from ansible_collections.mcdev.credentials.tests.reliability import fixtures, harness

PLANTS = ["versions/{id}", "versions/{id}/key.p12", "versions/{id}/meta.json", "versions/{id}/cert.pem",
          "current.tmp", ".current.tmp", "current"]


def _mode(path):
    return stat.S_IMODE(os.lstat(path).st_mode)


def _play(root, name, tasks):
    path = os.path.join(root, name + ".yml")
    with open(path, "w", encoding="utf-8") as handle:
        yaml.safe_dump([{"name": name, "hosts": "localhost", "connection": "local", "gather_facts": False,
                         "tasks": tasks}], handle)
    run = harness.run_ansible([os.path.join(harness.BIN, "ansible-playbook"), "-i", "localhost,", path],
                              os.path.join(root, "runs"), timeout=600)
    return run


@pytest.fixture()
def root():
    path = tempfile.mkdtemp(prefix="mcrel-r5-")
    os.umask(0o022)
    yield path
    shutil.rmtree(path, ignore_errors=True)


def test_keys_and_keystores_are_0600_through_generate_convert_backup_and_deploy(root):
    fx = fixtures.build(os.path.join(root, "fx"))
    out = os.path.join(root, "out")
    os.makedirs(out)
    existing = os.path.join(out, "existing.pem")
    shutil.copy(fx["other_key"], existing)
    os.chmod(existing, 0o600)
    tasks = [
        {"name": "generate", "mcdev.credentials.mc_csr": {"privatekey_path": out + "/gen.key.pem",
                                                          "csr_path": out + "/gen.csr", "common_name": "rel-r5"}},
        {"name": "regenerate with backup", "mcdev.credentials.mc_csr": {
            "privatekey_path": out + "/gen.key.pem", "csr_path": out + "/gen.csr", "common_name": "rel-r5",
            "regenerate": "always", "backup": True}},
    ]
    for fmt, ext, extra in (("pkcs12", "p12", {"passphrase": "r5-pass"}), ("pkcs1_pem", "pkcs1.pem", {}),
                            ("pkcs8_pem", "pkcs8.pem", {"passphrase": "r5-pass"}), ("pkcs8_der", "der", {})):
        args = {"src_path": out + "/gen.key.pem", "dest_path": "%s/conv.%s" % (out, ext), "format": fmt}
        args.update(extra)
        tasks.append({"name": "convert to " + fmt, "mcdev.credentials.mc_keystore": args})
    tasks.append({"name": "overwrite an existing key with backup", "mcdev.credentials.mc_keystore": {
        "src_path": out + "/gen.key.pem", "dest_path": existing, "format": "pkcs8_pem", "force": True,
        "backup": True}})
    for version in ("cred-a", "cred-b", "cred-c"):
        tasks.append({"name": "deploy " + version, "mcdev.credentials.mc_deploy": {
            "path": out + "/host", "name": "app", "credential_id": version,
            "private_key_src": fx["rsa_key"], "certificate_src": fx["cert"], "keystore_password": "r5-pass",
            "key_formats": ["p12", "pem"], "credential": {"id": version}}})
    run = _play(root, "modes", tasks)
    assert run.rc == 0, run.text()
    private = harness.private_files(out)
    names = sorted(os.path.relpath(p, out) for p in private)
    # generated, backup, 4 conversions, the overwritten file and its backup, 3 versions x (p12 + pem)
    assert len(private) >= 2 + 4 + 2 + 6, names
    assert any("backup" in n or "~" in n or n.count(".") > 2 for n in names if n.startswith("gen.key")), names
    wrong = {os.path.relpath(p, out): oct(_mode(p)) for p in private if _mode(p) != 0o600}
    harness.record_figure("R5 key file modes", files=len(private), not_0600=len(wrong))
    assert not wrong, "private files that are not 0600: %s" % wrong


def test_backup_of_a_world_readable_key_is_0600(root):
    """A key file someone left 0644 is replaced by a 0600 one; its backup (old key material) must not stay
    world-readable either."""
    fx = fixtures.build(os.path.join(root, "fx"))
    loose = os.path.join(root, "loose.pem")
    shutil.copy(fx["other_key"], loose)
    os.chmod(loose, 0o644)
    run = _play(root, "loose", [{"name": "overwrite with backup", "mcdev.credentials.mc_keystore": {
        "src_path": fx["rsa_key"], "dest_path": loose, "format": "pkcs8_pem", "force": True, "backup": True}}])
    assert run.rc == 0, run.text()
    modes = {os.path.basename(p): oct(_mode(p)) for p in harness.private_files(root) if "loose" in p}
    assert len(modes) == 2, modes
    assert set(modes.values()) == {"0o600"}, modes


def _deploy_task(fx, base, version, name="deploy"):
    return {"name": name, "mcdev.credentials.mc_deploy": {
        "path": base, "name": "app", "credential_id": version, "private_key_src": fx["rsa_key"],
        "certificate_src": fx["cert"], "keystore_password": "r5-pass", "credential": {"id": version}},
        "ignore_errors": True}


def test_deploy_never_follows_a_planted_symlink(root):
    fx = fixtures.build(os.path.join(root, "fx"))
    outside = os.path.join(root, "target-outside")
    os.makedirs(outside)
    with open(os.path.join(outside, "victim"), "w", encoding="utf-8") as handle:
        handle.write("must stay untouched\n")
    bases = {plant: os.path.join(root, "host%d" % index) for index, plant in enumerate(PLANTS)}
    # A first, clean deploy of cred-a on each host; then the attacker plants a link; then cred-b deploys.
    run = _play(root, "first", [_deploy_task(fx, base, "cred-a") for base in bases.values()])
    assert run.rc == 0, run.text()
    version = "cred-b"
    for plant, base in bases.items():
        link = os.path.join(base, "app", plant.format(id=version))
        os.makedirs(os.path.dirname(link), exist_ok=True)
        target = outside if plant.endswith(version) or plant == "current" else os.path.join(outside, "victim")
        if os.path.islink(link):
            os.unlink(link)
        os.symlink(target, link)
    before = harness.snapshot(outside)
    tasks = []
    for plant, base in bases.items():
        tasks.append(_deploy_task(fx, base, version, name="deploy [%s]" % plant))
        tasks.append({"name": "stamp [%s]" % plant, "mcdev.credentials.mc_deploy": {
            "path": base, "name": "app", "state": "verified", "credential_id": version}, "ignore_errors": True})
    run = _play(root, "attacked", tasks)
    after = harness.snapshot(outside)
    assert harness.snapshot_diff(before, after) == [], "the target outside the folder changed"
    assert sorted(os.listdir(outside)) == ["victim"]
    problems = {}
    for plant, base in bases.items():
        deploy = [r for r in run.results if r["task"] == "deploy [%s]" % plant][0]
        text = json.dumps(deploy["result"])
        folder = os.path.join(base, "app")
        if "Traceback" in text or "Exception" in text:
            problems[plant] = "traceback: " + text[:300]
        elif deploy["status"] in ("failed", "ignored"):
            # Failing is fine when the message says what is wrong.
            message = deploy["result"].get("msg", "").lower()
            if "link" not in message and "points to" not in message:
                problems[plant] = "failed without naming the link: " + deploy["result"].get("msg", "")[:300]
        else:
            # Or the link was replaced: what the application reads (current, the version folder and its
            # files) must resolve inside the folder. A planted file the product never uses may stay.
            used = [os.path.join(folder, "current"), os.path.join(folder, "versions", version)]
            used += [os.path.join(folder, "versions", version, n) for n in ("key.p12", "cert.pem", "meta.json")]
            for full in used:
                if not os.path.realpath(full).startswith(folder + os.sep):
                    problems[plant] = "%s resolves to %s" % (full, os.path.realpath(full))
            key = os.path.join(folder, "versions", version, "key.p12")
            if not os.path.isfile(key) or os.path.islink(key) or _mode(key) != 0o600:
                problems[plant] = "versions/%s/key.p12 is missing, a link or not 0600 after %s: %s" % (
                    version, deploy["status"], text[:600])
    harness.record_figure("R5 planted symlinks", plants=len(PLANTS), safe=len(PLANTS) - len(problems),
                          outside_changed=0)
    assert not problems, problems
