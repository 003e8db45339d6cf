"""A user's contract file at work: the client follows it against an emulator that serves a variant of the
Developers API (another list path, the alias named "description" as a third-party client names it), and the
collection's own contract fails there with a sentence naming the entry to correct."""

from __future__ import annotations

import pytest

from ansible_collections.mcdev.credentials.plugins.modules import mc_credential_info, mc_oauth_key, mc_revoke
from ansible_collections.mcdev.credentials.tests.emulator.harness import Emulator
from ansible_collections.mcdev.credentials.tests.unit.emulator.helpers import DevApi
from ansible_collections.mcdev.credentials.tests.unit.plugins.modules import mc_helpers as h
from ansible_collections.mcdev.credentials.tests.unit.plugins.modules.utils import ModuleFail, run_module

THIRD_PARTY = """
endpoints:
  list_credentials:
    path: /projects/{project_id}/keys
    evidence: third-party
create_fields:
  alias: description
credential_fields:
  alias: {name: description, evidence: third-party}
"""
OVERRIDDEN = ["endpoints.list_credentials.path", "create_fields.alias", "credential_fields.alias"]


@pytest.fixture(scope="module")
def variant(tmp_path_factory):
    emulator = Emulator.start(tmp_path_factory.mktemp("variant-emulator"), variant="third-party")
    yield emulator
    emulator.stop()


def key_args(emulator, account, project, tmp_path, **extra):
    args = dict(h.connection(emulator, account), project_id=project["id"], alias="orders-2027", oauth_version="1.0a",
                key_store=str(tmp_path / "ks"), keystore_password="Contract-Store-7")
    args.update(extra)
    return args


def remote_aliases(api):
    """The aliases the variant lists under its own path and field name, read with Mastercard's signer."""
    response = api.signed("GET", api.base + "/keys")
    assert response.status_code == 200, response.text
    return [item["description"] for item in response.json()["items"]]


def test_a_contract_file_makes_the_client_work_where_the_api_differs(variant, tmp_path):
    api = DevApi(variant)
    account, project = api.account, api.project
    (tmp_path / "contract.yml").write_text(THIRD_PARTY)
    args = key_args(variant, account, project, tmp_path, contract_path=str(tmp_path / "contract.yml"))

    created = run_module(mc_oauth_key, args)
    assert created["changed"] and created["action"] == "create"
    assert created["contract_overrides"] == OVERRIDDEN
    assert remote_aliases(api) == ["orders-2027"]
    before = h.counters(variant)
    again = run_module(mc_oauth_key, args)
    assert not again["changed"] and again["credential"]["id"] == created["credential"]["id"]
    assert h.mutating_calls(before, h.counters(variant)) == 0

    info = run_module(mc_credential_info, dict(h.connection(variant, account), projects=[project["id"]],
                                               contract_path=str(tmp_path / "contract.yml")))
    assert [c["alias"] for c in info["credentials"]] == ["orders-2027"] and info["contract_overrides"] == OVERRIDDEN
    revoked = run_module(mc_revoke, dict(h.connection(variant, account), project_id=project["id"], kind="oauth1",
                                         environment="sandbox",
                                         credential_id=created["credential"]["id"], confirm="REVOKE", force_last=True,
                                         contract_path=str(tmp_path / "contract.yml")))
    assert revoked["changed"] and revoked["contract_overrides"] == OVERRIDDEN


def test_the_default_contract_fails_there_naming_the_entry_to_correct(variant, tmp_path, monkeypatch):
    api = DevApi(variant)
    account, project = api.account, api.project
    with pytest.raises(ModuleFail) as failed:
        run_module(mc_oauth_key, key_args(variant, account, project, tmp_path))
    message = failed.value.result["msg"]
    assert "HTTP 405" in message, message  # the path exists for the create, not for a list
    assert ("the call followed the contract entry endpoints.list_credentials "
            "(GET /projects/{project_id}/credentials, assumed)") in message, message
    assert "correct the entry in a contract file (contract_path)" in message, message
    assert remote_aliases(api) == []
    # With the list corrected but not the body, the create is refused for the field the contract has wrong.
    (tmp_path / "list-only.yml").write_text("endpoints:\n  list_credentials:\n    path: /projects/{project_id}/keys\n")
    monkeypatch.setenv("MC_DEVAPI_CONTRACT", str(tmp_path / "list-only.yml"))
    with pytest.raises(ModuleFail) as failed:
        run_module(mc_oauth_key, key_args(variant, account, project, tmp_path))
    message = failed.value.result["msg"]
    assert "HTTP 400" in message and "description is required" in message, message
    assert "endpoints.create_credential (POST /projects/{project_id}/credentials, seen) of %s" % (
        tmp_path / "list-only.yml") in message, message
    assert remote_aliases(api) == []


def test_a_wrong_contract_file_is_refused_before_any_call(emulator, tmp_path):
    account, project = h.setup_project(emulator)
    (tmp_path / "typo.yml").write_text("endpoints:\n  list_credentails:\n    path: /projects/{project_id}/keys\n")
    before = h.counters(emulator)
    with pytest.raises(ModuleFail) as failed:
        run_module(mc_oauth_key, key_args(emulator, account, project, tmp_path, contract_path=str(tmp_path / "typo.yml")))
    message = failed.value.result["msg"]
    assert message.startswith("Invalid Developers API connection option contract_path: %s: endpoints.list_credentails "
                              "is not a contract entry; endpoints has get_project, list_credentials" % (tmp_path / "typo.yml")), message
    assert h.counters(emulator) == before
    assert not (tmp_path / "ks").exists()


def test_a_refusal_the_api_explains_carries_no_contract_note(emulator, tmp_path):
    account, _project = h.setup_project(emulator)
    with pytest.raises(ModuleFail) as failed:
        run_module(mc_oauth_key, key_args(emulator, account, {"id": "no-such-project"}, tmp_path))
    message = failed.value.result["msg"]
    assert "PROJECT_NOT_FOUND" in message and "contract" not in message, message


def test_the_rotation_planner_says_which_contract_it_plans_with(tmp_path):
    """mc_rotation_plan reports the overrides in every phase, and refuses a wrong contract file like the client."""
    from ansible_collections.mcdev.credentials.plugins.modules import mc_rotation_plan  # pylint: disable=import-outside-toplevel
    (tmp_path / "contract.yml").write_text(THIRD_PARTY)
    args = {"phase": "plan", "project_id": "p1", "kind": "oauth1", "name": "app", "hosts": ["h1"], "remote": [],
            "state_dir": str(tmp_path / "state"), "now": "2026-06-01T00:00:00Z", "consumer_key": "unused",
            "contract_path": str(tmp_path / "contract.yml")}
    assert run_module(mc_rotation_plan, args)["contract_overrides"] == OVERRIDDEN
    assert run_module(mc_rotation_plan, dict(args, contract_path=None))["contract_overrides"] == []
    (tmp_path / "typo.yml").write_text("create_field:\n  alias: description\n")
    with pytest.raises(ModuleFail) as failed:
        run_module(mc_rotation_plan, dict(args, contract_path=str(tmp_path / "typo.yml")))
    assert "contract_path" in failed.value.result["msg"] and "create_field is not a contract section" in \
        failed.value.result["msg"]
