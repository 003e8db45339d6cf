"""The Developers API connection is set once: playbooks/rotate.yml gives it to the collection's `api` action group
with module_defaults, and no task of the rotation role passes it (it used to be pasted into six calls)."""

from __future__ import annotations

import os

import yaml

from ansible_collections.mcdev.credentials.plugins.module_utils.connection import connection_argument_spec

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
GROUP = "group/mcdev.credentials.api"
# What the role's mc_rotation_api_* variables carry; the rest of the connection spec comes from MC_DEVAPI_*.
ROLE_CONNECTION = {"api_url", "consumer_key", "signing_key_path", "signing_key_password", "ca_path", "validate_certs"}
# Modules that run on the hosts: their ca_path, consumer_key, ... are the verify endpoint's, not the Developers API's.
HOST_MODULES = {"mc_deploy", "mc_verify"}


def load(*parts):
    with open(os.path.join(ROOT, *parts), encoding="utf-8") as handle:
        return yaml.safe_load(handle)


def module_calls(tasks):
    """(module short name, its arguments) of every collection module call in a task list, blocks included."""
    for task in tasks or []:
        for section in ("block", "rescue", "always"):
            yield from module_calls(task.get(section))
        for key, value in task.items():
            if key.startswith("mcdev.credentials."):
                yield key.rsplit(".", 1)[1], value or {}


def uses_the_api(module, args):
    """phase failed / release of the planner only write the ledger."""
    return module not in HOST_MODULES and not (module == "mc_rotation_plan"
                                               and args.get("phase") in ("failed", "release"))


def role_tasks():
    folder = os.path.join(ROOT, "roles", "rotation", "tasks")
    return {name: load("roles", "rotation", "tasks", name) for name in sorted(os.listdir(folder))}


def test_every_module_the_role_calls_with_the_api_is_in_the_api_group():
    group = set(load("meta", "runtime.yml")["action_groups"]["api"])
    called = {module for tasks in role_tasks().values() for module, _args in module_calls(tasks)}
    assert {"mc_rotation_plan", "mc_certificate", "mc_oauth_key"} <= called
    assert called - HOST_MODULES <= group


def test_no_role_task_passes_a_connection_option():
    spec = set(connection_argument_spec())
    for name, tasks in role_tasks().items():
        for module, args in module_calls(tasks):
            if module in HOST_MODULES:
                continue
            assert not spec & set(args), "%s passes %s to %s" % (name, sorted(spec & set(args)), module)


def test_rotate_yml_sets_the_connection_once_for_every_controller_play_that_calls_the_api():
    plays = load("playbooks", "rotate.yml")
    api_files = {name for name, tasks in role_tasks().items()
                 if any(uses_the_api(module, args) for module, args in module_calls(tasks))}
    with open(os.path.join(ROOT, "playbooks", "rotate.yml"), encoding="utf-8") as handle:
        text = handle.read()
    assert text.count("api_url:") == 1  # one mapping, shared by the plays through a YAML anchor
    covered = set()
    for play in plays:
        for task in play.get("tasks", []):
            role = task.get("ansible.builtin.import_role") or {}
            if role.get("name") != "mcdev.credentials.rotation":
                continue
            tasks_file = role.get("tasks_from", "main") + ".yml"
            if tasks_file in api_files:
                defaults = (play.get("module_defaults") or {}).get(GROUP)
                assert defaults is not None, "play %r runs %s without the API connection" % (play["name"], tasks_file)
                assert set(defaults) == ROLE_CONNECTION
                assert all("mc_rotation_" in str(value) for value in defaults.values())
                covered.add(tasks_file)
    assert covered == api_files


def test_the_plan_options_are_written_once():
    """roles/rotation/vars/main.yml holds what the role's mc_rotation_plan calls share, and each entry point's block
    sets it as the module's defaults: a call passes only its own options (the ~30 shared ones were pasted into main,
    replan and finish, and the lineage into every call)."""
    role_vars = load("roles", "rotation", "vars", "main.yml")
    lineage, plan = set(role_vars["_mc_rotation_lineage"]), set(role_vars["_mc_rotation_plan_options"])
    assert lineage < plan and len(plan) >= 25
    own = {"respect_backoff"}  # finish records with respect_backoff false
    calls = 0
    for name, tasks in role_tasks().items():
        for task in tasks:
            planned = [args for module, args in module_calls([task]) if module == "mc_rotation_plan"]
            if not planned:
                continue
            defaults = (task.get("module_defaults") or {}).get("mcdev.credentials.mc_rotation_plan")
            assert defaults in ("{{ _mc_rotation_plan_options }}", "{{ _mc_rotation_lineage }}"), name
            shared = plan - own if defaults == "{{ _mc_rotation_plan_options }}" else lineage
            for args in planned:
                calls += 1
                assert not shared & set(args), "%s passes %s again" % (name, sorted(shared & set(args)))
    assert calls >= 6
