# -*- coding: utf-8 -*-
# Copyright: mcdev.credentials contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Pin the import graph of the host-side module processes.

AnsiballZ ships sources without .pyc, so every module process compiles and imports
everything it imports. Each case runs one module for real, in a fresh interpreter
(against the emulator where it probes), and checks which heavy modules it did NOT
import: a probe imports only its own kind's libraries, mc_deploy no crypto or HTTP,
a local-only mc_credential_info scan no API client.
"""

from __future__ import annotations

import base64
import json
import os
import subprocess
import sys

import pytest

from ansible_collections.mcdev.credentials.plugins.action.mc_deploy import build_bundle

COLLECTIONS_PARENT = os.path.abspath(os.path.join(os.path.dirname(__file__), *[".."] * 7))
UTILS = "ansible_collections.mcdev.credentials.plugins.module_utils."
PASSWORD = "Imports-p12-Pa55"

REQUESTS = ("requests", "urllib3")
OAUTH1 = ("oauth1", "oauth1.oauth")
OAUTH2 = ("mastercard_oauth2_client",)
HTTP = ("ssl", "http.client")
API = (UTILS + "devapi", UTILS + "inventory", UTILS + "credential")
CRYPTO = ("cryptography", UTILS + "crypto")

_RUNNER = r"""
import json, sys
sys.path.insert(0, sys.argv[1])
import importlib
from ansible.module_utils import basic
# What AnsiballZ hands the module (not ansible.module_utils.testing: unittest.mock would import asyncio and ssl)
basic._ANSIBLE_ARGS = json.dumps({"ANSIBLE_MODULE_ARGS": json.loads(sys.argv[3])}).encode()
basic._ANSIBLE_PROFILE = "legacy"
module = importlib.import_module("ansible_collections.mcdev.credentials.plugins.modules." + sys.argv[2])
try:
    module.main()
except SystemExit:
    pass
with open(sys.argv[4], "w") as handle:
    json.dump(sorted(sys.modules), handle)
"""


def run_fresh(tmp_path, module, args):
    """Run module.main() in a new interpreter; return (result, set of imported module names)."""
    out = tmp_path / ("%s.modules.json" % module)
    proc = subprocess.run([sys.executable, "-c", _RUNNER, COLLECTIONS_PARENT, module, json.dumps(args), str(out)],
                          capture_output=True, text=True, check=False, timeout=120)
    assert out.exists(), proc.stderr[-2000:]
    result = json.loads(proc.stdout[proc.stdout.index("{"):])
    with open(out, encoding="utf-8") as handle:
        return result, set(json.load(handle))


def assert_not_imported(modules, *groups):
    names = [name for group in groups for name in group]
    found = sorted(name for name in names if name in modules)
    assert not found, "imported but not needed: %s" % ", ".join(found)


@pytest.fixture(scope="module")
def material(emulator, tmp_path_factory):
    """An ACTIVE mTLS certificate, OAuth 1.0a key and OAuth 2.0 key, as PEM files; an OAuth 1.0a deployment."""
    work = tmp_path_factory.mktemp("imports")
    account = emulator.new_account()
    mtls_project = emulator.new_project(account["account_id"], auth_model="MTLS")["id"]
    oauth_project = emulator.new_project(account["account_id"], auth_model="OAUTH10A", oauth2_enabled=True)["id"]
    out = {"work": str(work)}
    for kind, project, body in (("mtls", mtls_project, {"type": "MTLS"}),
                                ("oauth1", oauth_project, {"type": "SIGNING", "oauthVersion": "1.0a"}),
                                ("oauth2", oauth_project, {"type": "SIGNING", "oauthVersion": "2.0"})):
        cred = emulator.admin("POST", "/projects/%s/credentials" % project, body)
        (work / (kind + ".key.pem")).write_text(cred["private_key_pem"])
        (work / (kind + ".cert.pem")).write_text(cred["certificate"])
        out[kind] = dict(cred, key_path=str(work / (kind + ".key.pem")), cert_path=str(work / (kind + ".cert.pem")))
    cred = out["oauth1"]
    files = build_bundle({"private_key_src": cred["key_path"], "certificate": cred["certificate"],
                          "keystore_password": PASSWORD, "key_formats": ["p12"]})
    out["deploy_args"] = {"path": str(work / "base"), "name": "app", "credential_id": cred["id"],
                          "credential": {"id": cred["id"], "fingerprint": cred["fingerprint"]},
                          "_bundle": dict((k, base64.b64encode(v).decode()) for k, v in files.items()),
                          "keystore_password": PASSWORD}
    return out


def verify_args(emulator, material, kind):
    info, cred = emulator.info, material[kind]
    args = {"kind": kind, "ca_path": info["ca_path"], "private_key_path": cred["key_path"],
            "certificate_path": cred["cert_path"], "expected_fingerprint": cred["fingerprint"]}
    if kind == "mtls":
        args["url"] = info["mtls_ping_url"]
    elif kind == "oauth1":
        args.update(url=info["oauth1_ping_url"], consumer_key=cred["consumerKey"])
    else:
        args.update(token_url=info["token_url"], issuer=info["issuer"], url=info["oauth2_ping_url"],
                    client_id=cred["clientId"], kid=cred["kid"])
    return args


@pytest.mark.parametrize("kind, not_needed", [
    ("mtls", (REQUESTS, OAUTH1, OAUTH2)),
    ("oauth1", (REQUESTS, OAUTH2)),
    ("oauth2", (OAUTH1,)),
])
def test_mc_verify_imports_only_its_kind(emulator, material, tmp_path, kind, not_needed):
    result, modules = run_fresh(tmp_path, "mc_verify", verify_args(emulator, material, kind))
    assert result.get("success") is True, result.get("msg")
    assert_not_imported(modules, API, (UTILS + "deploy", UTILS + "crypto"), *not_needed)


def test_mc_verify_record_adds_only_the_deploy_code(emulator, material, tmp_path):
    deploy_args = dict(material["deploy_args"], path=str(tmp_path / "base"))
    result, modules = run_fresh(tmp_path, "mc_deploy", deploy_args)
    assert result.get("changed") is True, result.get("msg")
    args = verify_args(emulator, material, "oauth1")
    args["record"] = {"path": deploy_args["path"], "name": "app", "credential_id": material["oauth1"]["id"]}
    result, modules = run_fresh(tmp_path, "mc_verify", args)
    assert result.get("recorded", {}).get("changed") is True, result.get("msg")
    assert UTILS + "deploy" in modules
    assert_not_imported(modules, API, OAUTH2, (UTILS + "crypto",))


@pytest.mark.parametrize("state", ["present", "verified", "query", "rollback"])
def test_mc_deploy_imports_no_crypto_and_no_http(material, tmp_path, state):
    base = str(tmp_path / "base")
    result, _modules = run_fresh(tmp_path, "mc_deploy", dict(material["deploy_args"], path=base))
    assert result.get("changed") is True, result.get("msg")
    args = {"path": base, "name": "app", "state": state, "credential_id": material["oauth1"]["id"]}
    if state == "present":
        args = dict(material["deploy_args"], path=base)
    elif state == "verified":
        args["verified_fingerprint"] = material["oauth1"]["fingerprint"]
    elif state == "rollback":
        args.pop("credential_id")
    result, modules = run_fresh(tmp_path, "mc_deploy", args)
    assert not result.get("failed"), result.get("msg")
    assert_not_imported(modules, CRYPTO, REQUESTS, HTTP, OAUTH1, OAUTH2, API, (UTILS + "verify",))


def test_mc_deploy_with_verify_adds_only_the_probe_of_its_kind(emulator, material, tmp_path):
    """The rotation's one host task: deploy + reload + OAuth 1.0a probe + record, without OAuth 2.0 or the API."""
    cred = material["oauth1"]
    args = dict(material["deploy_args"], path=str(tmp_path / "base"), reload_command="true",
                verify={"kind": "oauth1", "url": emulator.info["oauth1_ping_url"], "ca_path": emulator.info["ca_path"],
                        "consumer_key": cred["consumerKey"]})
    result, modules = run_fresh(tmp_path, "mc_deploy", args)
    assert result.get("recorded", {}).get("changed") is True, result.get("msg")
    assert result["reloaded"] is True and result["verification"]["success"] is True
    assert UTILS + "verify" in modules and "oauth1.oauth" in modules
    assert_not_imported(modules, API, REQUESTS, OAUTH2, (UTILS + "crypto",))


def test_mc_credential_info_local_scan_imports_no_api_client(material, tmp_path):
    result, modules = run_fresh(tmp_path, "mc_credential_info", {"paths": [material["work"]]})
    assert not result.get("failed"), result.get("msg")
    assert result["summary"]["local_certificates"] >= 3
    assert_not_imported(modules, REQUESTS, OAUTH1, OAUTH2, (UTILS + "devapi", UTILS + "credential"))
