"""backend: portal end to end: the run writes a work order and waits; a scripted person reads only the JSON
work order and carries it out at the emulator's portal; the next run checks what was brought back, records the
credential, and a probe proves it live; the revocation goes the same way. Wrong material is refused and the work
order stays open. The Developers API is never called."""

from __future__ import annotations

import datetime
import json
import os
import stat

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from ansible_collections.mcdev.credentials.plugins.modules import mc_certificate, mc_oauth_key, mc_revoke, mc_verify
from ansible_collections.mcdev.credentials.tests.unit import content_cases
from ansible_collections.mcdev.credentials.tests.unit.emulator.helpers import external_ca
from ansible_collections.mcdev.credentials.tests.unit.plugins.modules import mc_helpers as h
from ansible_collections.mcdev.credentials.tests.unit.plugins.modules.utils import ModuleFail, run_module
from ansible_collections.mcdev.credentials.tests.emulator.person import ScriptedPerson

PASSWORD = "Portal-Store-Secret-4"
UTC = datetime.timezone.utc
MODULES = {"mtls": mc_certificate, "oauth1": mc_oauth_key, "oauth2": mc_oauth_key}


def key_args(project, tmp_path, kind, **extra):
    args = dict(project_id=project["id"], alias="payments-2027", environment="sandbox", backend="portal",
                portal_dir=str(tmp_path / "portal"), key_store=str(tmp_path / "ks"), keystore_password=PASSWORD)
    if kind != "mtls":
        args.update(oauth_version={"oauth1": "1.0a", "oauth2": "2.0"}[kind], key_type="ec" if kind == "oauth2" else "rsa")
    args.update(extra)
    return args


def project_for(emulator, kind):
    _account, project = h.setup_project(emulator, auth_model="MTLS" if kind == "mtls" else "OAUTH10A",
                                        oauth2_enabled=kind == "oauth2")
    return project


def probe(emulator, kind, result, key_path, fail_on_error=True):
    args = dict(kind=kind, ca_path=emulator.info["ca_path"], private_key_path=key_path, private_key_password=PASSWORD,
                fail_on_error=fail_on_error)
    if kind == "mtls":
        args.update(url=emulator.info["mtls_ping_url"], certificate_path=result["files"][0]["path"])
    elif kind == "oauth1":
        args.update(url=emulator.info["oauth1_ping_url"], consumer_key=result["consumer_key"])
    else:
        args.update(url=emulator.info["oauth2_ping_url"], token_url=emulator.info["token_url"],
                    client_id=result["client_id"], kid=result["kid"])
    return run_module(mc_verify, args)


@pytest.mark.parametrize("kind", ["mtls", "oauth1", "oauth2"])
def test_portal_lifecycle_carried_out_by_a_person_who_reads_only_the_work_order(emulator, tmp_path, kind):
    project = project_for(emulator, kind)
    module = MODULES[kind]
    extra = {"certificate_dest": str(tmp_path / "cert.pem")} if kind == "mtls" else {}
    args = key_args(project, tmp_path, kind, **extra)
    person = ScriptedPerson(emulator)
    before = h.counters(emulator)

    first = run_module(module, args)
    assert first["status"] == "AWAITING_ISSUE" and first["changed"] and first["action"] == "wait", first
    order_path = first["work_order"]["json"]
    order = person.read(order_path)
    screen = {"mtls": ("Add certificate", "Paste in a CSR"), "oauth1": ("Add project key", "Paste in a CSR file"),
              "oauth2": ("Add project key", "Paste in a CSR file")}[kind]
    assert (order["screen"], order["button"], order["method"]) == ("Sandbox credentials",) + screen
    assert order["alias"] == "payments-2027" and "BEGIN CERTIFICATE REQUEST" in order["csr"]
    assert all(words in first["msg"] for words in (first["work_order"]["page"], "Sandbox credentials", screen[0]))
    # The key was stored (0600) before the work order was written; the work order holds no key material.
    key_path = os.path.join(args["key_store"], project["id"], "sandbox", "payments-2027.key.pem")
    assert stat.S_IMODE(os.stat(key_path).st_mode) == 0o600
    for path in (order_path, first["work_order"]["page"]):
        with open(path, encoding="utf-8") as handle:
            text = handle.read()
        assert "PRIVATE KEY" not in text and PASSWORD not in text
    with open(first["work_order"]["page"], encoding="utf-8") as handle:
        assert order["csr"].strip() in handle.read()

    waiting = run_module(module, args)
    assert waiting["status"] == "AWAITING_ISSUE" and not waiting["changed"] and "Still waiting" in waiting["msg"]
    assert person.read(order_path) == order

    shown, _material = person.add(order_path)
    done = run_module(module, args)
    assert done["changed"] and done["action"] == "create" and "status" not in done, done
    assert done["credential"]["public_key_fingerprint"] == order["public_key_fingerprint"]
    assert done["credential"]["public_key_fingerprint"] == shown["publicKeyFingerprint"]
    assert not os.path.exists(order_path)
    assert os.listdir(os.path.join(args["portal_dir"], project["id"], "work-orders", "done"))
    if kind == "mtls":
        assert done["credential"]["fingerprint"] == shown["fingerprint"]
    else:
        assert (done["consumer_key"], done["kid"]) == (shown["consumerKey"], shown["kid"])
    # The probe against the (emulated) Mastercard endpoint is what proves it live.
    assert probe(emulator, kind, done, key_path)["success"] is True
    again = run_module(module, args)
    assert not again["changed"] and again["action"] == "none"

    revoke = dict(project_id=project["id"], environment="sandbox", kind=kind, alias=["payments-2027"], confirm="REVOKE",
                  force_last=True, backend="portal", portal_dir=args["portal_dir"])
    asked = run_module(mc_revoke, revoke)
    assert asked["status"] == "AWAITING_REVOKE" and asked["changed"] and asked["revoked"] == []
    revoke_order = person.read(asked["work_orders"][0]["json"])
    assert revoke_order["type"] == "REVOKE" and revoke_order["credential_id"] == done["credential"]["id"]
    assert not run_module(mc_revoke, revoke)["changed"]
    person.revoke(asked["work_orders"][0]["json"])
    closed = run_module(mc_revoke, revoke)
    assert closed["changed"] and [r["id"] for r in closed["revoked"]] == [done["credential"]["id"]]
    assert "status" not in closed
    assert probe(emulator, kind, done, key_path, fail_on_error=False)["success"] is False
    assert h.api_calls(before, h.counters(emulator), method="GET") == 0
    assert h.mutating_calls(before, h.counters(emulator)) == 0


def certificate_for(key, subject, issuer_key, issuer_cert, days=30, start_days=-1):
    now = datetime.datetime.now(UTC)
    return (x509.CertificateBuilder().subject_name(subject).issuer_name(issuer_cert.subject).public_key(key.public_key())
            .serial_number(x509.random_serial_number()).not_valid_before(now + datetime.timedelta(days=start_days))
            .not_valid_after(now + datetime.timedelta(days=days))
            .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.CLIENT_AUTH]), critical=False)
            .sign(issuer_key, hashes.SHA256()))


def pem(*certificates):
    return "".join(c.public_bytes(serialization.Encoding.PEM).decode("ascii") for c in certificates)


def test_wrong_material_is_refused_naming_what_does_not_match(emulator, tmp_path):
    project = project_for(emulator, "mtls")
    args = key_args(project, tmp_path, "mtls")
    first = run_module(mc_certificate, args)
    order = json.loads(open(first["work_order"]["json"], encoding="utf-8").read())
    csr = x509.load_pem_x509_csr(order["csr"].encode("ascii"))
    ca_key, ca_cert = external_ca(emulator)
    pending = serialization.load_pem_private_key(
        open(os.path.join(args["key_store"], project["id"], "sandbox", "payments-2027.key.pem"), "rb").read(),
        PASSWORD.encode())
    other_key = ec.generate_private_key(ec.SECP256R1())
    other_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "someone-else-Client-MTF-000000")])
    cases = [
        ("another key", pem(certificate_for(other_key, csr.subject, ca_key, ca_cert), ca_cert),
         "certifies another key than the work order's CSR"),
        ("another subject", pem(certificate_for(pending, other_name, ca_key, ca_cert), ca_cert),
         "the certificate's subject CN=someone-else-Client-MTF-000000 is not the CSR's"),
        ("expired", pem(certificate_for(pending, csr.subject, ca_key, ca_cert, days=-1, start_days=-30), ca_cert),
         "expired"),
        ("chain out of order", pem(certificate_for(pending, csr.subject, ca_key, ca_cert),
                                   content_cases.certificate(other_key, "Unrelated CA", ca=True)),
         "is not issued by certificate 2 (CN=Unrelated CA)"),
        ("not a certificate", "-----BEGIN CERTIFICATE-----\nbm90IGEgY2VydA==\n-----END CERTIFICATE-----\n",
         "not a readable certificate"),
    ]
    for case, text, expect in cases:
        for supply in ("issued", "inbox"):
            extra = {"issued": {"certificate": text}} if supply == "issued" else {}
            if supply == "inbox":
                with open(order["inbox"], "w", encoding="ascii") as handle:
                    handle.write(text)
            with pytest.raises(ModuleFail) as refused:
                run_module(mc_certificate, dict(args, **extra))
            message = refused.value.result["msg"]
            assert message.startswith("issued: ") and expect in message, (case, supply, message)
            assert "the work order stays open" in message and (order["inbox"] in message) == (supply == "inbox")
            assert os.path.exists(first["work_order"]["json"])
            assert not os.path.exists(os.path.join(args["portal_dir"], project["id"], "credentials.json"))
        os.unlink(order["inbox"])


@pytest.mark.parametrize("material, expect", [
    ({"consumer_key": "not-a-consumer-key"}, "consumer_key 'not-a-consumer-key' does not have the shape of one"),
    ({"expires": "2030-01-01"}, "consumer_key missing; the portal shows the consumer key"),
    ({"kid": "ab" * 24}, "kid is not asked for; for oauth1 bring back consumer_key"),
    ({"consumer_key": "A" * 48 + "!" + "0" * 48, "client_secret": "x"}, "client_secret is not asked for"),
    ({"consumer_key": "A" * 48 + "!" + "0" * 48, "expires": "2020-01-01"}, "expires 2020-01-01 is in the past"),
])
def test_wrong_oauth_identifiers_are_refused(emulator, tmp_path, material, expect):
    project = project_for(emulator, "oauth1")
    args = key_args(project, tmp_path, "oauth1")
    first = run_module(mc_oauth_key, args)
    with open(first["work_order"]["inbox"], "w", encoding="utf-8") as handle:
        json.dump(material, handle)
    with pytest.raises(ModuleFail) as refused:
        run_module(mc_oauth_key, args)
    assert expect in refused.value.result["msg"], refused.value.result["msg"]
    assert os.path.exists(first["work_order"]["json"])


def test_a_rotation_waiting_on_the_person_warns_then_pages_before_the_credential_in_use_expires(emulator, tmp_path):
    project = project_for(emulator, "oauth1")
    person = ScriptedPerson(emulator)
    args = key_args(project, tmp_path, "oauth1", renew_before="30d")
    first = run_module(mc_oauth_key, args)
    shown, material = person.add(first["work_order"]["json"], drop=False)
    in_ten_days = (datetime.datetime.now(UTC) + datetime.timedelta(days=10)).strftime("%Y-%m-%d")
    current = run_module(mc_oauth_key, dict(args, issued=dict(material, expires=in_ten_days)))
    assert current["action"] == "create" and current["credential"]["expires"].startswith(in_ten_days)

    # Due within renew_before: the rotation waits on the person; the credential in use stays active meanwhile.
    waiting = run_module(mc_oauth_key, args)
    assert waiting["status"] == "AWAITING_ISSUE" and waiting["changed"]
    assert any("is waiting on a person" in warning and "payments-2027" in warning for warning in waiting["warnings"])
    assert waiting["in_use_days_left"] in (9, 10)
    order = person.read(waiting["work_order"]["json"])
    assert order["in_use"]["id"] == current["credential"]["id"] and order["alias"] != "payments-2027"
    with pytest.raises(ModuleFail) as paged:
        run_module(mc_oauth_key, dict(args, escalate_before=14))
    assert "within escalate_before (14 days): act now" in paged.value.result["msg"]
    assert paged.value.result["status"] == "AWAITING_ISSUE"
    records = json.load(open(os.path.join(args["portal_dir"], project["id"], "credentials.json"), encoding="utf-8"))
    assert [r["status"] for r in records["credentials"]] == ["ACTIVE"]
    assert shown["consumerKey"] == current["consumer_key"]


def test_a_run_that_stopped_after_recording_files_the_work_order_away(emulator, tmp_path):
    project = project_for(emulator, "oauth2")
    person = ScriptedPerson(emulator)
    args = key_args(project, tmp_path, "oauth2")
    first = run_module(mc_oauth_key, args)
    saved = open(first["work_order"]["json"], encoding="utf-8").read()
    person.add(first["work_order"]["json"])
    run_module(mc_oauth_key, args)
    # As if the run had stopped between recording the credential and filing its work order away.
    with open(first["work_order"]["json"], "w", encoding="utf-8") as handle:
        handle.write(saved)
    after = run_module(mc_oauth_key, args)
    assert after["action"] == "none" and not os.path.exists(first["work_order"]["json"])


@pytest.mark.parametrize("kind", ["mtls", "oauth1"])
def test_a_revocation_is_confirmed_by_probing_the_old_credential_against_the_one_that_replaced_it(
        emulator, tmp_path, kind):
    """mc_rotation_plan: the old credential refused at the verify endpoint while its replacement is accepted there
    answers the revoke work order; still accepted (the person has not revoked it yet), it keeps waiting."""
    from ansible_collections.mcdev.credentials.plugins.modules import mc_rotation_plan  # pylint: disable=import-outside-toplevel
    project = project_for(emulator, kind)
    person = ScriptedPerson(emulator)
    state = tmp_path / "state"
    key_store = state / ("%s_sandbox_%s_app" % (project["id"], kind)) / "keys"
    made = {}
    for alias in ("app-1780000000", "app-1790000000"):  # old, then its replacement, both through the portal
        # as the rotation role asks for them: with the certificate (the hosts' files need it)
        args = key_args(project, tmp_path, kind, alias=alias, key_store=str(key_store), keystore_password=None,
                        certificate_dest=str(tmp_path / (alias + ".pem")))
        args.pop("keystore_password")
        person.add(run_module(MODULES[kind], args)["work_order"]["json"])
        made[alias] = run_module(MODULES[kind], args)["credential"]
    old, new = made["app-1780000000"], made["app-1790000000"]
    # both were made within seconds: date the old one a year back, as it would be, so that the new one is the newer
    listing = tmp_path / "portal" / project["id"] / "credentials.json"
    records = json.loads(listing.read_text())
    for record in records["credentials"]:
        if record["id"] == old["id"]:
            record["createdDate"] = "2025-12-01T00:00:00Z"
    listing.write_text(json.dumps(records))
    hosts = dict((h, {"reachable": True, "current_id": new["id"], "current_fingerprint": new["fingerprint"],
                      "verified_fingerprint": new["fingerprint"], "verified_at": "2026-01-01T00:00:00Z",
                      "versions": [{"credential_id": new["id"], "fingerprint": new["fingerprint"]},
                                   {"credential_id": old["id"], "fingerprint": old["fingerprint"],
                                    "verified_at": "2026-01-01T00:00:00Z"}]}) for h in ("h1", "h2"))
    url = emulator.info["mtls_ping_url"] if kind == "mtls" else emulator.info["oauth1_ping_url"]
    plan = dict(project_id=project["id"], kind=kind, name="app", hosts=["h1", "h2"], state_dir=str(state),
                backend="portal", portal_dir=str(tmp_path / "portal"),
                rollout={"key_formats": ["pem"], "verify_url": url, "verify_ca_path": emulator.info["ca_path"]})
    first = run_module(mc_rotation_plan, dict(plan, phase="record", revoke=True, host_facts=hosts))
    assert first["state"] == "AWAITING_REVOKE", first["reason"]
    (order,) = first["work_orders"]
    # not revoked at the portal yet: the old credential is still accepted, so nothing is confirmed
    still = run_module(mc_rotation_plan, plan)
    assert still["state"] == "AWAITING_REVOKE" and still["revocation_probes"][0]["confirmed"] is False
    person.revoke(order["json"], drop=False)  # the person revokes, and says nothing
    probed = run_module(mc_rotation_plan, plan)
    (seen,) = probed["revocation_probes"]
    assert seen["confirmed"] and seen["credential_id"] == old["id"] and seen["control"] == new["id"], seen
    assert seen["cause"] in ("unauthorized", "forbidden", "client_certificate_rejected", "handshake_refused"), seen
    assert probed["state"] == "REVOKING" and probed["record"] is True and probed["changed"] is True
    done = run_module(mc_rotation_plan, dict(plan, phase="record", revoke=True, run_id=probed["run_id"]))
    assert done["revoked"] == [old["id"]] and not os.path.exists(order["json"])
