"""Concurrent clients: no lost or duplicated writes, every request verified."""
import concurrent.futures

from ansible_collections.mcdev.credentials.tests.unit.emulator.helpers import DevApi, make_csr


def test_concurrent_creates_with_one_alias_make_exactly_one_credential(emulator, devapi):
    bodies = []
    for _index in range(12):
        _key, csr = make_csr("race")
        bodies.append({"type": "SIGNING", "environment": "SANDBOX", "alias": "race", "csr": csr})
    with concurrent.futures.ThreadPoolExecutor(max_workers=12) as pool:
        statuses = sorted(pool.map(lambda body: devapi.call("POST", "/credentials", body).status_code, bodies))
    assert statuses == [201] + [409] * 11
    assert devapi.call("GET", "/credentials").json()["total"] == 1


def test_many_clients_in_parallel_all_succeed(emulator, shared_account):
    projects = [DevApi(emulator, account=shared_account) for _index in range(4)]

    def work(index):
        project = projects[index % len(projects)]
        _key, csr = make_csr("parallel-%d" % index)
        created = project.call("POST", "/credentials", {"type": "SIGNING", "environment": "SANDBOX",
                                                        "alias": "p-%d" % index, "csr": csr})
        listed = project.call("GET", "/credentials")
        return created.status_code, listed.status_code

    with concurrent.futures.ThreadPoolExecutor(max_workers=24) as pool:
        results = list(pool.map(work, range(48)))
    assert results == [(201, 200)] * 48
    assert sum(project.call("GET", "/credentials").json()["total"] for project in projects) == 48
