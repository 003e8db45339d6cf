"""R3: bad input to every module and the rotation role fails cleanly, names what to change, and touches nothing.

The corpus is bad_input_cases.yml. Module cases run as one playbook per user (root, and `nobody` for the
permission cases, since root bypasses permission checks); each role case is its own playbook.
"""
import json
import os
import pwd
import shutil
import string
import tempfile

import pytest
import yaml

from ansible_collections.mcdev.credentials.tests.reliability import fixtures, harness

CASES_FILE = os.path.join(harness.HERE, "bad_input_cases.yml")
with open(CASES_FILE, encoding="utf-8") as _handle:
    CASES = yaml.safe_load(_handle)
NOBODY = pwd.getpwnam("nobody").pw_uid
API_MODULES = {"mc_revoke", "mc_credential_info", "mc_oauth_key", "mc_certificate", "mc_rotation_plan"}


def _substitute(value, mapping):
    if isinstance(value, str):
        return string.Template(value).safe_substitute(mapping)
    if isinstance(value, list):
        return [_substitute(v, mapping) for v in value]
    if isinstance(value, dict):
        return {k: _substitute(v, mapping) for k, v in value.items()}
    return value


class Corpus(object):
    """Lays out every case folder, runs the cases, and judges each result."""

    def __init__(self, emulator, root):
        self.root = root
        # Readable by the unprivileged user of the permission cases.
        os.chmod(root, 0o755)
        self.cases_dir = os.path.join(root, "cases")
        self.outside = os.path.join(root, "outside")
        os.makedirs(self.cases_dir)
        os.makedirs(self.outside)
        with open(os.path.join(self.outside, "target"), "w", encoding="utf-8") as handle:
            handle.write("must stay untouched\n")
        self.fx = fixtures.build(os.path.join(root, "fx"), emulator.info)
        for path in self.fx.values():
            if path.startswith(root):
                os.chmod(path, 0o644)  # the fixtures themselves are read by `nobody` too
        oauth = harness.Project(emulator, os.path.join(root, "ctl"), "oauth1")
        os.chmod(oauth.signing_key_path, 0o644)
        mtls = harness.Project(emulator, os.path.join(root, "ctl-mtls"), "mtls", account=oauth.account)
        seeded = emulator.admin("POST", "/projects/%s/credentials" % oauth.id,
                                {"type": "SIGNING", "environment": "SANDBOX", "alias": "rel-seed",
                                 "oauthVersion": "1.0a", "key_type": "RSA", "key_size": 2048})
        info = emulator.info
        self.connection = oauth.connection
        self.mapping = {
            "fx": os.path.join(root, "fx"), "outside": self.outside, "api_url": info["api_url"],
            "consumer_key": oauth.account["consumer_key"], "signing_key": oauth.signing_key_path,
            "ca": info["ca_path"], "project": oauth.id, "project_mtls": mtls.id, "active_id": seeded["id"],
            "mtls_ping": info.get("mtls_ping_url") or info["mtls_url"] + "/ping",
            "oauth1_ping": info["oauth1_ping_url"], "token_url": info["token_url"], "issuer": info["issuer"],
            "long_cn": "x" * 300,
        }
        self.projects = (oauth, mtls)
        self.emulator = emulator
        self.keep = True  # kept for a look after a failure; removed when every case passed

    def remote_state(self):
        return {p.id: sorted((c["id"], c["status"], c.get("alias")) for c in p.credentials()) for p in self.projects}

    def prepare(self, case):
        folder = os.path.join(self.cases_dir, case["id"])
        os.makedirs(folder)
        os.chmod(folder, 0o777 if case.get("user") else 0o755)
        for name in case.get("dirs", []):
            os.makedirs(os.path.join(folder, name), exist_ok=True)
        for name, fixture in case.get("copy", {}).items():
            shutil.copy(self.fx[fixture], os.path.join(folder, name))
        for name, target in case.get("link", {}).items():
            os.symlink(_substitute(target, dict(self.mapping, case=folder)), os.path.join(folder, name))
        for name, mode in case.get("mode", {}).items():
            os.chmod(os.path.join(folder, name), int(mode, 8))
        return folder

    def task_for(self, case):
        folder = os.path.join(self.cases_dir, case["id"])
        args = _substitute(case["args"], dict(self.mapping, case=folder))
        if case.get("api") or case["module"] in API_MODULES:
            for key, value in self.connection.items():
                args.setdefault(key, value)
        return {"name": "case %s" % case["id"], "mcdev.credentials.%s" % case["module"]: args,
                "ignore_errors": True}

    def snapshot(self):
        return {"cases": harness.snapshot(self.cases_dir), "outside": harness.snapshot(self.outside)}

    def run_modules(self, cases, user=None, lanes=3):
        """One playbook; the cases are spread over `lanes` local hosts that run in parallel (strategy free)."""
        tasks = []
        for index, case in enumerate(cases):
            task = self.task_for(case)
            task["when"] = "inventory_hostname == 'lane%d'" % (index % lanes)
            tasks.append(task)
        play = [{"name": "bad input", "hosts": "all", "connection": "local", "gather_facts": False,
                 "strategy": "free", "tasks": tasks}]
        path = os.path.join(self.root, "bad-input-%s.yml" % (user or "root"))
        with open(path, "w", encoding="utf-8") as handle:
            yaml.safe_dump(play, handle)
        os.chmod(path, 0o644)
        extra = None
        inventory = ",".join("lane%d" % i for i in range(lanes)) + ","
        run = harness.run_ansible([os.path.join(harness.BIN, "ansible-playbook"), "-i", inventory, "-f", str(lanes),
                                   path], os.path.join(self.root, "runs-%s" % (user or "root")), extra_env=extra,
                                  user=user, timeout=600)
        by_case = {}
        for result in run.results:
            if result["task"].startswith("case ") and result["status"] != "skipped":
                by_case[result["task"][5:]] = result
        return run, by_case

    def run_role(self, case):
        """The whole rotation playbook (the role's entry points) with the case's variables."""
        folder = os.path.join(self.cases_dir, case["id"])
        variables = _substitute(case["vars"], dict(self.mapping, case=folder))
        variables.update({"mc_rotation_api_url": self.connection["api_url"],
                          "mc_rotation_consumer_key": self.connection["consumer_key"],
                          "mc_rotation_signing_key_path": self.connection["signing_key_path"],
                          "mc_rotation_api_ca_path": self.connection["ca_path"]})
        vars_path = os.path.join(self.root, "role-%s.vars.json" % case["id"])
        with open(vars_path, "w", encoding="utf-8") as handle:
            json.dump(variables, handle)
        inventory = os.path.join(self.root, "role-%s.inventory.yml" % case["id"])
        with open(inventory, "w", encoding="utf-8") as handle:
            yaml.safe_dump({"all": {"hosts": {"localhost": {"ansible_connection": "local"}}, "children": {
                "mc_rotation_hosts": {"hosts": {"local1": {"ansible_connection": "local",
                                                           "mc_rotation_base_dir": folder + "/host"}}}}}}, handle)
        run = harness.run_ansible([os.path.join(harness.BIN, "ansible-playbook"), "-i", inventory,
                                   harness.ROTATE_PLAYBOOK, "-e", "@" + vars_path],
                                  os.path.join(self.root, "runs-role"), timeout=300)
        failed = [r for r in run.results if r["status"] == "failed"]
        return run, failed[0] if failed else None


def judge(case, result):
    """The problems with one case's result (empty: the case passed)."""
    if result is None:
        return ["no result recorded (the run stopped before this case)"]
    problems = []
    body = result["result"]
    text = json.dumps(body)
    if result["status"] not in ("failed", "ignored"):
        problems.append("did not fail (status %s): %s" % (result["status"], text[:400]))
    for word in ("Traceback", "Exception"):
        if word in text:
            problems.append("%r in the result: %s" % (word, text[:600]))
    message = str(body.get("msg", ""))
    for needle in case["expect"]:
        if not any(n.lower() in message.lower() for n in needle.split("|")):
            problems.append("message does not mention %r: %s" % (needle, message[:400]))
    return problems


@pytest.fixture(scope="module")
def corpus(emulator):
    root = tempfile.mkdtemp(prefix="mcrel-r3-")
    built = Corpus(emulator, root)
    yield built
    if not built.keep:
        shutil.rmtree(root, ignore_errors=True)


def test_bad_input_corpus(corpus):
    assert len(CASES) >= 40
    for case in CASES:
        corpus.prepare(case)
    before = corpus.snapshot()
    remote_before = corpus.remote_state()
    results = {}
    module_cases = [c for c in CASES if "module" in c]
    for user in (None, NOBODY):
        batch = [c for c in module_cases if bool(c.get("user")) == bool(user)]
        run, by_case = corpus.run_modules(batch, user=user)
        assert run.rc in (0, 2), run.text()
        for case in batch:
            results[case["id"]] = by_case.get(case["id"])
    for case in [c for c in CASES if "role" in c]:
        _run, results[case["id"]] = corpus.run_role(case)
    after = corpus.snapshot()
    failures = {}
    for case in CASES:
        problems = judge(case, results[case["id"]])
        folder = case["id"] + "/"
        changed = [c for c in harness.snapshot_diff(before["cases"], after["cases"])
                   if c.startswith(folder) or c.startswith(case["id"] + ":")]
        if changed:
            problems.append("files changed: %s" % changed)
        if problems:
            failures[case["id"]] = problems
    outside = harness.snapshot_diff(before["outside"], after["outside"])
    remote_after = corpus.remote_state()
    passed = len(CASES) - len(failures)
    harness.record_figure("R3 bad input", passed=passed, cases=len(CASES),
                          failed=sorted(failures))
    report = "\n".join("%s:\n    %s" % (k, "\n    ".join(v)) for k, v in sorted(failures.items()))
    with open(os.path.join(corpus.root, "report.txt"), "w", encoding="utf-8") as handle:
        handle.write(report + "\n" + "\n".join(outside))
    corpus.keep = bool(failures or outside)
    assert not outside, "a file outside the case folders changed: %s" % outside
    assert remote_before == remote_after, "a bad-input case changed the API state"
    assert not failures, "%d/%d bad-input cases passed; failures:\n%s" % (passed, len(CASES), report)
