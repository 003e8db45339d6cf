"""Fixtures for the emulator's own tests (the session `emulator` fixture is in tests/unit/conftest.py)."""
import pytest

from ansible_collections.mcdev.credentials.tests.unit.emulator.helpers import DevApi


@pytest.fixture(scope="session")
def shared_account(emulator):
    """One Developers API account for most tests (each still gets its own project)."""
    return emulator.new_account()


@pytest.fixture
def devapi(emulator, shared_account):
    """A fresh OAUTH10A project on the session emulator."""
    return DevApi(emulator, account=shared_account)


@pytest.fixture
def make_devapi(emulator, shared_account):
    """Factory for projects of other auth models."""
    def factory(auth_model="OAUTH10A", oauth2_enabled=False):
        return DevApi(emulator, auth_model, oauth2_enabled, account=shared_account)
    return factory


@pytest.fixture
def rules(emulator):
    """Change portal rules for one test; the previous values come back afterwards."""
    before = emulator.admin("GET", "/rules")

    def change(**overrides):
        return emulator.admin("POST", "/rules", overrides)

    yield change
    emulator.admin("POST", "/rules", before)


@pytest.fixture
def clock(emulator):
    """Shift the emulated clock for one test (seconds); reset to 0 afterwards."""
    def shift(seconds):
        return emulator.admin("POST", "/clock", {"offset_seconds": seconds})

    yield shift
    emulator.admin("POST", "/clock", {"offset_seconds": 0})


@pytest.fixture
def faults(emulator):
    """Inject faults for one test; all cleared afterwards."""
    def inject(**spec):
        return emulator.admin("POST", "/faults", spec)

    yield inject
    emulator.admin("DELETE", "/faults")
