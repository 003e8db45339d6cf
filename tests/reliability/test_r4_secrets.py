"""R4: no private key, password or access token in logs (-vvvv + ANSIBLE_LOG_PATH), results, reports,
meta.json or the ledger, after a rotation of each kind and a playbook of every module."""
import glob
import os

import pytest
import yaml
from cryptography.hazmat.primitives import serialization

from ansible_collections.mcdev.credentials.tests.reliability import harness

CSR_PASSPHRASE = "rel-csr-passphrase-55e1"
CONVERT_PASSPHRASE = "rel-convert-passphrase-0b7d"


def test_the_scanner_finds_a_key_in_every_form(tmp_path):
    """Positive control: every way a key could be written out is found (else a 0 would mean nothing)."""
    from cryptography.hazmat.primitives.asymmetric import ec, rsa  # pylint: disable=import-outside-toplevel
    keys = [rsa.generate_private_key(public_exponent=65537, key_size=2048), ec.generate_private_key(ec.SECP256R1())]
    needles = harness.secret_needles(keys, ["a-password"])
    for index, key in enumerate(keys):
        forms = {}
        for label, fmt in (("pkcs8", serialization.PrivateFormat.PKCS8),
                           ("trad", serialization.PrivateFormat.TraditionalOpenSSL)):
            pem = key.private_bytes(serialization.Encoding.PEM, fmt, serialization.NoEncryption())
            der = key.private_bytes(serialization.Encoding.DER, fmt, serialization.NoEncryption())
            body = b"".join(pem.splitlines()[1:-1])
            forms[label + ".pem"] = pem
            forms[label + ".bodyonly"] = body  # no marker: only the base64 needle can find it
            forms[label + ".json"] = b'{"msg": "%s"}' % pem.replace(b"\n", b"\\n").replace(b"-----", b"")
            forms[label + ".der"] = der
            forms[label + ".hex"] = der.hex().encode()
        for name, data in forms.items():
            path = tmp_path / ("k%d-%s" % (index, name))
            path.write_bytes(data)
            labels = {label for _path, label in harness.scan_paths([str(path)], needles)}
            assert {found for found in labels if found.startswith("key%d-" % index)}, (name, labels)
    (tmp_path / "log").write_bytes(b"password=a-password token=eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiJ4In0.c2lnbmF0dXJlLXgx\n")
    labels = {label for _path, label in harness.scan_paths([str(tmp_path / "log")], needles)}
    assert "password0" in labels and any(found.startswith("jwt:") for found in labels), labels


@pytest.mark.parametrize("kind", ["oauth2", pytest.param("mtls", marks=pytest.mark.soak)])
def test_no_secret_in_any_log_result_report_meta_or_ledger(emulator, tmp_path, kind):
    workdir = str(tmp_path)
    logs = os.path.join(workdir, "logs")
    runs = os.path.join(workdir, "runs")
    os.makedirs(logs)
    project = harness.Project(emulator, os.path.join(workdir, "ctl"), kind)
    fleet = harness.Fleet(os.path.join(workdir, "fleet"), local_hosts=2)
    name = "app-" + kind
    variables = harness.rotation_vars(project, fleet, name)
    state_dir = variables["mc_rotation_state_dir"]
    outputs = []
    for index, force in enumerate((False, True)):
        run = harness.rotate(fleet, dict(variables, mc_rotation_force=force), runs, verbosity=4,
                             extra_env={"ANSIBLE_LOG_PATH": os.path.join(logs, "rotation.log")})
        assert run.rc == 0, run.text()
        outputs.append(("rotation-%d" % index, run))
    assert harness.Invariant(project, fleet, name).settled() == []
    # Every module once, at -vvvv, with secrets in its options.
    out = os.path.join(workdir, "modules")
    os.makedirs(out)
    host_p12 = glob.glob(os.path.join(fleet.base("local1"), name, "current", "key.p12"))[0]
    remote = {c["id"]: c for c in project.credentials()}
    current_id = os.path.basename(os.readlink(os.path.join(fleet.base("local1"), name, "current")))
    cred = remote[current_id]
    verify = {"kind": kind, "pkcs12_path": host_p12, "pkcs12_password": harness.KEYSTORE_PASSWORD,
              "ca_path": emulator.info["ca_path"]}
    if kind == "oauth2":
        verify.update({"client_id": cred["clientId"], "kid": cred["kid"], "token_url": emulator.info["token_url"],
                       "issuer": emulator.info["issuer"], "url": emulator.info["oauth2_ping_url"]})
    else:
        verify["url"] = emulator.info["mtls_ping_url"]
    tasks = [
        {"name": "csr", "mcdev.credentials.mc_csr": {
            "privatekey_path": out + "/k.pem", "csr_path": out + "/k.csr", "common_name": "rel-r4",
            "privatekey_passphrase": CSR_PASSPHRASE}},
        {"name": "to p12", "mcdev.credentials.mc_keystore": {
            "src_path": out + "/k.pem", "src_passphrase": CSR_PASSPHRASE, "dest_path": out + "/k.p12",
            "format": "pkcs12", "passphrase": CONVERT_PASSPHRASE}},
        {"name": "to pkcs8", "mcdev.credentials.mc_keystore": {
            "src_path": out + "/k.p12", "src_passphrase": CONVERT_PASSPHRASE, "dest_path": out + "/k8.pem",
            "format": "pkcs8_pem", "passphrase": CONVERT_PASSPHRASE}},
        {"name": "verify", "mcdev.credentials.mc_verify": verify},
        {"name": "info", "mcdev.credentials.mc_credential_info": dict(
            project.connection, projects=[project.id], paths=[fleet.workdir + "/hosts"], recurse=True,
            pkcs12_passwords=[harness.KEYSTORE_PASSWORD])},
        {"name": "report", "ansible.builtin.include_role": {"name": "mcdev.credentials.expiry_report"},
         "vars": {"mc_expiry_report_projects": [project.id], "mc_expiry_report_dest_dir": out + "/reports",
                  "mc_expiry_report_rotation_state_dir": state_dir,
                  "mc_expiry_report_api_url": project.connection["api_url"],
                  "mc_expiry_report_consumer_key": project.connection["consumer_key"],
                  "mc_expiry_report_signing_key_path": project.connection["signing_key_path"],
                  "mc_expiry_report_api_ca_path": project.connection["ca_path"]}},
    ]
    play = os.path.join(workdir, "modules.yml")
    with open(play, "w", encoding="utf-8") as handle:
        yaml.safe_dump([{"name": "every module", "hosts": "localhost", "connection": "local",
                         "gather_facts": False, "tasks": tasks}], handle)
    run = harness.run_ansible([os.path.join(harness.BIN, "ansible-playbook"), "-i", "localhost,", play, "-vvvv"],
                              runs, extra_env={"ANSIBLE_LOG_PATH": os.path.join(logs, "modules.log")})
    outputs.append(("modules", run))
    assert run.rc == 0, run.text()
    for label, finished in outputs:
        for stream in ("stdout", "stderr"):
            with open(os.path.join(logs, "%s.%s" % (label, stream)), "w", encoding="utf-8") as handle:
                handle.write(getattr(finished, stream))
    keys = harness.rotation_private_keys(fleet, [state_dir], project, [(out + "/k.pem", CSR_PASSPHRASE.encode())])
    assert len(keys) >= 4 + 2
    passwords = [harness.KEYSTORE_PASSWORD, harness.KEY_STORE_PASSWORD, CSR_PASSPHRASE, CONVERT_PASSPHRASE,
                 project.account.get("p12_password") or "keystorepassword"]
    needles = harness.secret_needles(keys, passwords)
    scanned = [logs, os.path.join(out, "reports")]
    scanned += glob.glob(os.path.join(runs, "results-*.jsonl"))
    scanned += glob.glob(os.path.join(fleet.workdir, "hosts", "**", "meta.json"), recursive=True)
    scanned += [p for p in glob.glob(os.path.join(state_dir, "**", "*"), recursive=True)
                if os.path.isfile(p) and not p.endswith(".key.pem")]
    files = [p for p in scanned if os.path.isfile(p)] + [p for p in scanned if os.path.isdir(p)]
    hits = harness.scan_paths(files, needles)
    log_bytes = sum(os.path.getsize(os.path.join(logs, n)) for n in os.listdir(logs))
    harness.record_figure("R4 secrets", kind=kind, hits=len(hits), needles=len(needles), keys=len(keys),
                          log_bytes=log_bytes, files=len(files))
    assert log_bytes > 100000, "the -vvvv logs are suspiciously small"
    assert os.path.exists(os.path.join(logs, "rotation.log"))
    assert not hits, hits[:20]
