"""A job as AWX runs it: ansible-runner with a private data dir (env/envvars from the credential type's
injectors, env/extravars, project/, inventory/), a fresh controller state, at verbosity 0 and 3. Nothing the
runner keeps (artifacts/<id>/: command, stdout, job_events, status) holds a secret, and the job did its work."""

from __future__ import annotations

import json
import os
import sys

import ansible_runner
import pytest

from ansible_collections.mcdev.credentials.tests.unit import test_awx_credential_type as awx

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
KEYSTORE_PASSWORD = "Runner-Keystore-Pass-5"
PLAY = """
- name: An AWX job of the collection
  hosts: localhost
  gather_facts: false
  tasks:
    - name: Add an OAuth 1.0a key (the connection comes from the credential type)
      mcdev.credentials.mc_oauth_key:
        project_id: "{{ project_id }}"
        alias: runner-job
        oauth_version: "1.0a"
        key_store: "{{ key_store }}"
        keystore_password: "{{ keystore_password }}"
      register: added

    - name: List the project's credentials
      mcdev.credentials.mc_credential_info:
        projects: ["{{ project_id }}"]
      register: listed

    - name: Say what the job did
      ansible.builtin.debug:
        msg: "{{ added.credential.id }} {{ listed.credentials | length }}"
"""


def secrets_of(inputs):
    pem_lines = [line for line in inputs["signing_key"].splitlines() if line and not line.startswith("-----")]
    return [inputs["signing_key_password"], KEYSTORE_PASSWORD, "PRIVATE KEY"] + pem_lines


def job(tmp_path, inputs, project, ident, verbosity):
    data = tmp_path / ident
    for folder in ("env", "project", "inventory"):
        (data / folder).mkdir(parents=True)
    env, _files = awx.inject(awx.credential_type()["injectors"], inputs, str(data))
    env.update(ANSIBLE_COLLECTIONS_PATH=os.path.abspath(os.path.join(ROOT, "..", "..", "..")), ANSIBLE_NOCOLOR="1")
    (data / "env" / "envvars").write_text(json.dumps(env))
    (data / "env" / "extravars").write_text(json.dumps({
        "project_id": project["id"], "key_store": str(tmp_path / ("controller-" + ident)),
        "keystore_password": KEYSTORE_PASSWORD}))
    (data / "project" / "play.yml").write_text(PLAY)
    (data / "inventory" / "hosts").write_text(
        "localhost ansible_connection=local ansible_python_interpreter=%s\n" % sys.executable)
    result = ansible_runner.run(private_data_dir=str(data), playbook="play.yml", ident=ident, verbosity=verbosity,
                                quiet=True)
    return data, result


@pytest.fixture
def awx_inputs(emulator):
    return awx.awx_credential(emulator)


@pytest.mark.parametrize("verbosity", [0, 3])
def test_a_runner_job_keeps_no_secret_in_its_artifacts(awx_inputs, tmp_path, verbosity):
    inputs, project = awx_inputs
    data, result = job(tmp_path, inputs, project, "job-v%d" % verbosity, verbosity)
    assert (result.status, result.rc) == ("successful", 0), result.stdout.read()[-3000:]
    said = [event["event_data"]["res"]["msg"] for event in result.events
            if event.get("event") == "runner_on_ok" and "msg" in event.get("event_data", {}).get("res", {})]
    assert said and said[-1].split()[1] == "1", said
    artifacts = data / "artifacts" / ("job-v%d" % verbosity)
    scanned = 0
    for folder, _dirs, names in os.walk(artifacts):
        for name in names:
            with open(os.path.join(folder, name), "rb") as handle:
                text = handle.read().decode("utf-8", "replace")
            scanned += 1
            for secret in secrets_of(inputs):
                assert secret not in text, (os.path.relpath(os.path.join(folder, name), data), secret[:12])
    assert scanned >= 5 and (artifacts / "command").exists() and (artifacts / "job_events").is_dir()
