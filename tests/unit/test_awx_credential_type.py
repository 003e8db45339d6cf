"""The AWX credential type (extensions/awx/credential_type.yml), its injectors rendered the way AWX renders them
(a sandboxed Jinja environment; each file injector written 0600 into the job's private data dir and named by
tower.filename.<label>): no secret reaches the job's environment, which ansible-runner writes in plain text to
its artifacts, and the API client works from what was injected."""

from __future__ import annotations

import json
import os
import stat
import tempfile
from types import SimpleNamespace

import pytest
import yaml
from cryptography.hazmat.primitives import serialization
from jinja2.sandbox import ImmutableSandboxedEnvironment

from ansible_collections.mcdev.credentials.plugins.module_utils import devapi
from ansible_collections.mcdev.credentials.plugins.module_utils.connection import PASSWORD_FILE_ENV

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
PASSWORD = "Signing-Key-Pass-77"


def credential_type():
    with open(os.path.join(ROOT, "extensions", "awx", "credential_type.yml"), encoding="utf-8") as handle:
        return yaml.safe_load(handle)


def inject(injectors, inputs, private_data_dir):
    """(env, files) as AWX makes them from a credential of this type."""
    sandbox = ImmutableSandboxedEnvironment()
    names = SimpleNamespace()
    for label, template in sorted((injectors.get("file") or {}).items()):
        descriptor, path = tempfile.mkstemp(dir=private_data_dir)
        with os.fdopen(descriptor, "w") as handle:
            handle.write(sandbox.from_string(template).render(**inputs))
        os.chmod(path, stat.S_IRUSR | stat.S_IWUSR)
        setattr(names, label.split(".", 1)[1], path)
    namespace = dict(inputs, tower=SimpleNamespace(filename=names))
    env = {name: sandbox.from_string(template).render(**namespace) for name, template in injectors["env"].items()}
    return env, vars(names)


def awx_credential(emulator):
    """(inputs of a credential of this type, its project): a new account's encrypted signing key, the emulator's CA."""
    account = emulator.new_account()
    project = emulator.new_project(account["account_id"])
    key = serialization.load_pem_private_key(account["signing_key_pem"].encode("ascii"), None)
    encrypted = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                  serialization.BestAvailableEncryption(PASSWORD.encode())).decode("ascii")
    with open(emulator.info["ca_path"], encoding="ascii") as handle:
        ca_bundle = handle.read()
    inputs = {"api_url": emulator.info["api_url"], "consumer_key": account["consumer_key"], "signing_key": encrypted,
              "signing_key_password": PASSWORD, "ca_bundle": ca_bundle}
    return inputs, project


@pytest.fixture
def filled_in(emulator):
    return awx_credential(emulator)


def test_no_secret_is_injected_into_the_environment(filled_in, tmp_path):
    inputs, project = filled_in
    kind = credential_type()
    assert {field["id"] for field in kind["inputs"]["fields"] if field.get("secret")} == {"signing_key",
                                                                                          "signing_key_password"}
    env, files = inject(kind["injectors"], inputs, str(tmp_path))
    # What ansible-runner keeps of the job's environment (env/envvars, artifacts/<id>/command) holds no secret.
    written = json.dumps(env)
    assert PASSWORD not in written and "PRIVATE KEY" not in written
    assert env[PASSWORD_FILE_ENV] == files["signing_key_password"]
    for path in files.values():
        assert stat.S_IMODE(os.stat(path).st_mode) == 0o600

    client = devapi.client_from_params({}, environ=env)
    try:
        assert client.get_project(project["id"]).id == project["id"]
    finally:
        client.close()


def test_the_password_file_is_needed_and_named_when_unreadable(filled_in, tmp_path):
    inputs, _project = filled_in
    env, _files = inject(credential_type()["injectors"], inputs, str(tmp_path))
    without = {name: value for name, value in env.items() if name != PASSWORD_FILE_ENV}
    with pytest.raises(devapi.DevApiConfigError, match="is encrypted"):
        devapi.client_from_params({}, environ=without)
    with pytest.raises(devapi.DevApiConfigError) as unreadable:
        devapi.client_from_params({}, environ=dict(env, **{PASSWORD_FILE_ENV: str(tmp_path / "gone")}))
    assert "%s names %s, which cannot be read" % (PASSWORD_FILE_ENV, tmp_path / "gone") in str(unreadable.value)
    # Other callers keep the variable; it wins over the file.
    os.unlink(env[PASSWORD_FILE_ENV])
    client = devapi.client_from_params({}, environ=dict(without, MC_DEVAPI_SIGNING_KEY_PASSWORD=PASSWORD,
                                                        **{PASSWORD_FILE_ENV: env[PASSWORD_FILE_ENV]}))
    client.close()


def test_an_empty_password_injects_no_file_name(filled_in, tmp_path):
    inputs, _project = filled_in
    env, _files = inject(credential_type()["injectors"], dict(inputs, signing_key_password=""), str(tmp_path))
    assert env[PASSWORD_FILE_ENV] == ""
    assert devapi.resolve_connection_params({}, env)["signing_key_password"] is None
