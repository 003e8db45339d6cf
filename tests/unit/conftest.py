"""Make plain pytest find the collection as ansible_collections.mcdev.credentials.

The build lays the tree out under <build>/ansible_collections/mcdev/credentials;
putting <build> on sys.path lets tests import it by its real name.
"""
import os
import sys

_COLLECTION_ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
_ANSIBLE_COLLECTIONS_PARENT = os.path.abspath(os.path.join(_COLLECTION_ROOT, "..", "..", ".."))
if os.path.basename(os.path.dirname(os.path.dirname(_COLLECTION_ROOT))) == "ansible_collections":
    if _ANSIBLE_COLLECTIONS_PARENT not in sys.path:
        sys.path.insert(0, _ANSIBLE_COLLECTIONS_PARENT)

# pylint: disable=wrong-import-position
import importlib.util  # noqa: E402

import pytest  # noqa: E402


def _load_emulator_harness():
    """tests/emulator/harness.py, by its collection name when the build tree provides one."""
    try:
        from ansible_collections.mcdev.credentials.tests.emulator import harness  # pylint: disable=import-outside-toplevel
        return harness
    except ImportError:
        path = os.path.join(_COLLECTION_ROOT, "tests", "emulator", "harness.py")
        spec = importlib.util.spec_from_file_location("mcdev_emulator_harness", path)
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
        return module


@pytest.fixture(scope="session")
def emulator(tmp_path_factory):
    """One Developers API emulator for the session (per xdist worker); it errors, never skips, if it cannot start.

    Tests that change its clock, rules or faults put them back (or use their own
    ``Emulator.start``); every test makes its own account and project.
    """
    harness = _load_emulator_harness()
    instance = harness.Emulator.start(tmp_path_factory.mktemp("emulator"))
    try:
        yield instance
    finally:
        instance.stop()
