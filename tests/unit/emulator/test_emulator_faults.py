"""Fault injection and call counters."""
import time

import pytest
import requests

from ansible_collections.mcdev.credentials.tests.unit.emulator.helpers import make_csr, reason

CREATE_RULE = "/developers/projects/<project_id>/credentials"


def test_error_fault_with_count(emulator, devapi, faults):
    faults(route="get_project", status=503, count=2)
    assert reason(devapi.call("GET", "")) == (503, "Gateway", "SERVICE_UNAVAILABLE")
    second = devapi.call("GET", "")
    assert second.status_code == 503 and second.json()["Errors"]["Error"][0]["Recoverable"] is True
    assert devapi.call("GET", "").status_code == 200
    # Other routes were never affected.
    assert devapi.call("GET", "/credentials").status_code == 200
    listed = emulator.admin("GET", "/faults")["faults"]
    assert listed[0]["count"] == 0 and listed[0]["applied"] == 2


def test_429_carries_retry_after(devapi, faults):
    faults(route=CREATE_RULE, method="POST", status=429, retry_after=7, count=1)
    _key, csr = make_csr("rl")
    body = {"type": "SIGNING", "environment": "SANDBOX", "alias": "rl", "csr": csr}
    response = devapi.call("POST", "/credentials", body)
    assert reason(response) == (429, "Gateway", "RATE_LIMIT_EXCEEDED")
    assert response.headers["Retry-After"] == "7"
    # The rejected call changed nothing; the retry creates exactly one credential.
    assert devapi.call("POST", "/credentials", body).status_code == 201
    assert devapi.call("GET", "/credentials").json()["total"] == 1


def test_method_filter(devapi, faults):
    faults(route=CREATE_RULE, method="POST", status=500)
    assert devapi.call("GET", "/credentials").status_code == 200
    assert devapi.call("POST", "/credentials", {}).status_code == 500


def test_latency(devapi, faults):
    faults(route="list_credentials", latency_ms=300, count=1)
    started = time.monotonic()
    assert devapi.call("GET", "/credentials").status_code == 200
    slow = time.monotonic() - started
    started = time.monotonic()
    assert devapi.call("GET", "/credentials").status_code == 200
    fast = time.monotonic() - started
    assert slow >= 0.3 and fast < 0.3


def test_drop_response_commits_the_change(devapi, faults):
    faults(route="create_credential", drop_response_rate=1.0, count=1)
    _key, csr = make_csr("dropped")
    with pytest.raises(requests.exceptions.ConnectionError):
        devapi.call("POST", "/credentials", {"type": "SIGNING", "environment": "SANDBOX", "alias": "dropped",
                                             "csr": csr})
    listed = devapi.call("GET", "/credentials").json()
    assert [item["alias"] for item in listed["items"]] == ["dropped"]


def test_seeded_error_rate_is_deterministic(devapi, emulator, faults):
    def pattern():
        faults(route="/developers/projects/*", method="GET", error_rate=0.5, status=502, seed=1234, count=10)
        outcome = [devapi.call("GET", "").status_code for _attempt in range(12)]
        emulator.admin("DELETE", "/faults")
        return outcome

    first, second = pattern(), pattern()
    assert first == second
    assert set(first) == {200, 502} and first.count(502) <= 10


def test_faults_apply_to_the_token_endpoint(emulator, faults):
    faults(route="token", status=503, count=1)
    response = requests.post(emulator.info["token_url"], data="grant_type=client_credentials", timeout=30,
                             verify=emulator.info["ca_path"],
                             headers={"Content-Type": "application/x-www-form-urlencoded"})
    assert response.status_code == 503
    response = requests.post(emulator.info["token_url"], data="grant_type=client_credentials", timeout=30,
                             verify=emulator.info["ca_path"],
                             headers={"Content-Type": "application/x-www-form-urlencoded"})
    assert response.status_code == 400


def test_counters_count_per_route(emulator, devapi):
    before = emulator.admin("GET", "/counters")
    for _attempt in range(3):
        devapi.call("GET", "/credentials")
    devapi.call("GET", "")
    after = emulator.admin("GET", "/counters")
    key = "GET /developers/projects/<project_id>/credentials"
    assert after[key] - before.get(key, 0) == 3
    assert after["GET /developers/projects/<project_id>"] - before.get("GET /developers/projects/<project_id>", 0) == 1
