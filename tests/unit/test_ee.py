"""The execution environment built from this checkout (`make ee`, tests/tools/ee_context.py): `ansible-builder
create` on extensions/ee/execution-environment.yml gives a context whose galaxy stage installs the checkout's own
collection offline (it is not on Galaxy), whose builder stage collects the collection's Python requirements, and
whose Python and ansible-core are the ones the collection is tested with. No container engine is needed."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys

import yaml
from packaging.requirements import Requirement

from ansible_collections.mcdev.credentials.tests.tools import ee_context

ROOT = ee_context.ROOT


def pins():
    """{name: version} of the exact pins the collection's CI installs."""
    pinned = {}
    for name in ("requirements.txt", "requirements-dev.txt"):
        with open(os.path.join(ROOT, name), encoding="utf-8") as handle:
            for raw in handle:
                line = raw.split("#")[0].strip()
                if line and not line.startswith("-") and "==" in line:
                    requirement = Requirement(line)
                    pinned[requirement.name.lower()] = str(requirement.specifier).lstrip("=")
    return pinned


def run(argv, cwd, **env):
    done = subprocess.run(argv, capture_output=True, text=True, cwd=cwd, check=False, timeout=300,
                          env=dict(os.environ, ANSIBLE_NOCOLOR="1", **env))
    assert done.returncode == 0, (argv, done.stdout[-2000:], done.stderr[-2000:])
    return done.stdout


def test_the_ee_context_installs_this_checkout_with_its_requirements(tmp_path):
    context = ee_context.build_context(str(tmp_path / "ee"))
    pinned = pins()
    with open(os.path.join(context, "Containerfile"), encoding="utf-8") as handle:
        containerfile = handle.read()
    assert re.search(r'^ARG PYCMD="/usr/bin/python3\.1[12]"$', containerfile, re.M), "Python 3.11 or 3.12"
    refs = re.search(r'^ARG ANSIBLE_INSTALL_REFS="(.*)"$', containerfile, re.M).group(1).split()
    assert "ansible-core==" + pinned["ansible-core"] in refs and "ansible-runner==" + pinned["ansible-runner"] in refs

    # the galaxy stage, as the Containerfile runs it: in the context's _build folder, from its requirements.yml
    build = os.path.join(context, "_build")
    collections = tmp_path / "usr-share-ansible-collections"
    run([ee_context.tool("ansible-galaxy"), "collection", "install", "--offline", "-r", "requirements.yml",
         "--collections-path", str(collections)], build, ANSIBLE_COLLECTIONS_PATH=str(collections))
    # (the image has no other copy: with the build tree's copy on the path, ansible-galaxy would skip the install)
    installed = collections / "ansible_collections" / "mcdev" / "credentials"
    with open(installed / "MANIFEST.json", encoding="utf-8") as handle:
        version = json.load(handle)["collection_info"]["version"]
    with open(os.path.join(ROOT, "galaxy.yml"), encoding="utf-8") as handle:
        assert version == yaml.safe_load(handle)["version"]
    for path in ("plugins/modules/mc_rotation_plan.py", "plugins/module_utils/state_pg.py", "roles/rotation/tasks/main.yml"):
        with open(installed / path, "rb") as copy, open(os.path.join(ROOT, path), "rb") as original:
            assert copy.read() == original.read(), path

    # the builder stage: the collection's meta/execution-environment.yml plus the definition's own Python packages
    wanted = tmp_path / "requirements.txt"
    run([sys.executable, os.path.join(build, "scripts", "introspect.py"), "introspect", str(collections),
         "--user-pip", os.path.join(build, "requirements.txt"), "--write-pip", str(wanted),
         "--write-bindep", str(tmp_path / "bindep.txt")], build)
    requirements = {}
    for line in wanted.read_text().splitlines():
        if line.split("#")[0].strip():
            requirement = Requirement(line.split("#")[0].strip())
            requirements[requirement.name.lower()] = requirement
    assert {"cryptography", "requests", "mastercard-oauth1-signer", "mastercard-oauth2-client",
            "psycopg"} <= set(requirements), sorted(requirements)
    for name, requirement in requirements.items():
        if name in pinned:  # the versions CI tests with are inside the image's ranges
            assert requirement.specifier.contains(pinned[name]), (name, str(requirement.specifier), pinned[name])
