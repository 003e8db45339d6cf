"""`make demo`: the whole story on this machine, against the local Developers API emulator.

1. start the emulator (HTTPS on loopback, its own CA, state in <build>/demo/);
2. create a demo account and two projects, with an mTLS certificate and OAuth 1.0a / 2.0 keys close to
   expiry (admin seeding);
3. a fleet of six hosts (local connection, one folder per host) running those credentials today;
4. rotate each credential with playbooks/rotate.yml, then run it again to show it has nothing to do;
5. portal-assisted: rotate an mTLS certificate of a project without Developers API access with the same
   playbook (mc_rotation_backend: portal); the demo plays the person, reading the JSON work orders and
   carrying them out at the emulator's portal, and prints what it followed (no Developers API call);
   the expiry report, written while the first work order is open, lists it;
6. write the expiry report with playbooks/report.yml;
7. print what happened and where to look, and stop the emulator.

Usage: python tests/tools/demo.py [BUILD_DIR]   (from the collection root)
"""

import json
import os
import shutil
import subprocess
import sys
import time

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
sys.path.insert(0, ROOT)

from tests.emulator.harness import Emulator  # noqa: E402  pylint: disable=wrong-import-position
from tests.emulator.person import ScriptedPerson  # noqa: E402  pylint: disable=wrong-import-position

HOSTS = ["app%d" % i for i in range(1, 7)]
KEYSTORE_PASSWORD = "demo-keystore-password"
CREDENTIALS = [
    # name on the hosts, kind, project, days left, how it is rotated
    ("payments-mtls", "mtls", "payments", 20, "api"),
    ("loyalty-oauth1", "oauth1", "loyalty", 45, "api"),
    ("loyalty-oauth2", "oauth2", "loyalty", 100, "api"),
    # made in the portal before; the project has no Developers API access
    ("partners-mtls", "mtls", "partners", 30, "portal"),
]


def say(text=""):
    print(text, flush=True)


def run(command, log, env):
    started = time.monotonic()
    with open(log, "a", encoding="utf-8") as handle:
        handle.write("\n$ %s\n" % " ".join(command))
        handle.flush()
        proc = subprocess.run(command, env=env, stdout=handle, stderr=subprocess.STDOUT, check=False, cwd=ROOT)
    if proc.returncode != 0:
        with open(log, encoding="utf-8") as handle:
            tail = handle.read()[-4000:]
        raise SystemExit("demo: %s failed (rc %d); the end of %s:\n%s" % (command[1], proc.returncode, log, tail))
    return time.monotonic() - started


def api_calls(emulator):
    """Developers API calls the emulator counted since its counters were last reset."""
    return sum(v for k, v in emulator.admin("GET", "/counters").items() if "/developers" in k)


def portal_part(emulator, item, work, log, env, playbook, inventory, report):
    """The same rotate.yml with mc_rotation_backend: portal; the demo plays the person between the runs."""
    with open(item["vars"], encoding="utf-8") as handle:
        variables = dict(json.load(handle), mc_rotation_backend="portal")
    varfile = os.path.join(work, "rotate-%s-portal.json" % item["name"])
    with open(varfile, "w", encoding="utf-8") as handle:
        json.dump(variables, handle)
    orders = os.path.join(variables["mc_rotation_state_dir"], "portal", item["project_id"], "work-orders")
    person = ScriptedPerson(emulator, bring_id=True)
    rotate = [playbook, "-i", inventory, os.path.join(ROOT, "playbooks", "rotate.yml"), "-e", "@" + varfile]
    emulator.admin("POST", "/reset", {"scope": "counters"})
    say()
    say("== Portal-assisted: rotate %s (project %s has the portal, not the Developers API)"
        % (item["name"], item["project"]))
    took = run(rotate, log, env)
    (create,) = [os.path.join(orders, n) for n in sorted(os.listdir(orders)) if n.endswith("-create.json")]
    order = person.read(create)
    say("-- run 1 (%.0f s): key and CSR made in the controller key store, work order written, AWAITING_ISSUE;"
        " the hosts keep %s" % (took, item["credential"]["id"][:8]))
    calls = api_calls(emulator)
    report()  # its own Developers API calls (the credential lists) are not the rotation's
    emulator.admin("POST", "/reset", {"scope": "counters"})
    with open(os.path.join(work, "report", "expiry-report.json"), encoding="utf-8") as handle:
        waiting = json.load(handle)["work_orders"]
    say("   the expiry report lists %d open work order(s): %s" % (
        len(waiting), ", ".join("%s %s" % (o["step"], o["alias"]) for o in waiting)))
    say("-- the person (the demo) followed %s:" % os.path.relpath(create, work))
    say("   %s > %s > %s, alias %s, pasted the CSR; brought back %s into %s" % (
        order["screen"], order["button"], order["method"], order["alias"], " and ".join(order["bring_back"]),
        os.path.relpath(order["inbox"], work)))
    shown, _material = person.add(create)
    took = run(rotate, log, env)
    say("-- run 2: certificate checked against the work order, deployed to %d hosts and verified from each; "
        "%.0f s from the material supplied to verified on every host; AWAITING_REVOKE" % (len(HOSTS), took))
    (revoke,) = [os.path.join(orders, n) for n in sorted(os.listdir(orders)) if n.endswith("-revoke.json")]
    order = person.read(revoke)
    say("-- the person followed %s: %s > %s on %s (id %s), typed %s" % (
        os.path.relpath(revoke, work), order["screen"], order["action"], order["alias"], order["credential_id"][:8],
        order["type"]))
    person.revoke(revoke)
    took = run(rotate, log, env)
    say("-- run 3 (%.0f s): revocation confirmed and recorded, rotation closed; the hosts run %s; "
        "%d Developers API calls in all three runs" % (took, shown["id"][:8], calls + api_calls(emulator)))


def main():
    build = os.path.abspath(sys.argv[1] if len(sys.argv) > 1 else os.path.join(ROOT, "build"))
    work = os.path.join(build, "demo")
    shutil.rmtree(work, ignore_errors=True)
    os.makedirs(work)
    collections = os.path.join(work, "collections")
    # Ansible finds this checkout as the collection mcdev.credentials through a symlink.
    os.makedirs(os.path.join(collections, "ansible_collections", "mcdev"))
    os.symlink(ROOT, os.path.join(collections, "ansible_collections", "mcdev", "credentials"))
    bindir = os.path.dirname(sys.executable)
    env = dict(os.environ, ANSIBLE_COLLECTIONS_PATH=collections, ANSIBLE_HOST_KEY_CHECKING="False",
               ANSIBLE_LOCALHOST_WARNING="False", ANSIBLE_INVENTORY_UNPARSED_WARNING="False",
               ANSIBLE_FORKS="6", ANSIBLE_NOCOLOR="1", ANSIBLE_DEPRECATION_WARNINGS="False",
               ANSIBLE_RETRY_FILES_ENABLED="False", PATH=bindir + os.pathsep + os.environ.get("PATH", ""))
    log = os.path.join(work, "ansible.log")
    playbook = os.path.join(bindir, "ansible-playbook")

    say("== mcdev.credentials demo (everything runs on this machine; files under %s)" % work)
    emulator = Emulator.start(os.path.join(work, "emulator"))
    try:
        info = emulator.info
        say("-- emulator: Developers API at %s (CA %s)" % (info["api_url"], info["ca_path"]))
        account = emulator.new_account(name="demo")
        signing_key = os.path.join(work, "devapi-signing-key.pem")
        with open(os.open(signing_key, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600), "w") as handle:
            handle.write(account["signing_key_pem"])
        projects = {
            "payments": emulator.new_project(account["account_id"], auth_model="MTLS", name="payments"),
            "loyalty": emulator.new_project(account["account_id"], auth_model="OAUTH10A", oauth2_enabled=True,
                                            name="loyalty"),
            "partners": emulator.new_project(account["account_id"], auth_model="MTLS", name="partners"),
        }
        now = emulator.admin("GET", "/clock")["now"]
        seeded = []
        for name, kind, project, days, backend in CREDENTIALS:
            body = {"alias": name, "notBefore": now - (395 - days) * 86400, "expiryDate": now + days * 86400}
            body.update({"mtls": {"type": "MTLS"}, "oauth1": {"type": "SIGNING", "oauthVersion": "1.0a"},
                         "oauth2": {"type": "SIGNING", "oauthVersion": "2.0"}}[kind])
            cred = emulator.admin("POST", "/projects/%s/credentials" % projects[project]["id"], body)
            key_path = os.path.join(work, "today-%s.key.pem" % name)
            with open(os.open(key_path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600), "w") as handle:
                handle.write(cred.pop("private_key_pem"))
            verify_url = {"mtls": info["mtls_ping_url"], "oauth1": info["oauth1_ping_url"],
                          "oauth2": info["oauth2_ping_url"]}[kind]
            seeded.append({"name": name, "kind": kind, "project": project, "project_id": projects[project]["id"],
                           "credential": cred, "key_path": key_path, "verify_url": verify_url,
                           "token_url": info["token_url"], "issuer": info["issuer"], "days": days,
                           "backend": backend})
            say("-- project %-8s %-6s credential %s (alias %s) expires in %d days"
                % (project, kind, cred["id"], name, days))

        inventory = os.path.join(work, "inventory.yml")
        hosts = dict((h, {"ansible_connection": "local", "ansible_python_interpreter": sys.executable,
                          "mc_rotation_base_dir": os.path.join(work, "hosts", h)}) for h in HOSTS)
        with open(inventory, "w", encoding="utf-8") as handle:
            json.dump({"all": {"children": {"demo_fleet": {"hosts": hosts}}}}, handle, indent=2)
        for host in HOSTS:
            os.makedirs(os.path.join(work, "hosts", host))
        reload_script = os.path.join(work, "reload-app.sh")
        with open(reload_script, "w", encoding="ascii") as handle:
            handle.write('#!/bin/sh\n# the demo application: "reloads" by logging the version it now uses\n'
                         'echo "$(date -u +%FT%TZ) $2 -> $(readlink "$1/$2/current")" >> "$1/app-reloads.log"\n')
        os.chmod(reload_script, 0o755)
        common = {
            "mc_rotation_keystore_password": KEYSTORE_PASSWORD,
            "mc_rotation_state_dir": os.path.join(work, "controller-state"),
            "mc_rotation_api_url": info["api_url"], "mc_rotation_consumer_key": account["consumer_key"],
            "mc_rotation_signing_key_path": signing_key, "mc_rotation_api_ca_path": info["ca_path"],
            "mc_rotation_verify_ca_path": info["ca_path"], "mc_rotation_hosts": "demo_fleet",
            "mc_rotation_serial": [1, "50%", "100%"],
            "mc_rotation_reload_command": "%s {{ mc_rotation_base_dir }} {{ mc_rotation_name }}" % reload_script,
        }
        varfile = os.path.join(work, "fleet-today.json")
        with open(varfile, "w", encoding="utf-8") as handle:
            json.dump(dict(common, demo_credentials=seeded), handle)
        say("-- fleet: %d hosts (%s), each with its folder under %s/hosts" % (len(HOSTS), ", ".join(HOSTS), work))
        took = run([playbook, "-i", inventory, os.path.join(ROOT, "playbooks", "demo.yml"), "-e", "@" + varfile],
                   log, env)
        say("   today's credentials deployed and verified on every host (%.0f s)" % took)

        for item in seeded:
            if item["backend"] == "portal":
                continue
            variables = dict(common, mc_rotation_project_id=item["project_id"], mc_rotation_kind=item["kind"],
                             mc_rotation_name=item["name"], mc_rotation_verify_url=item["verify_url"])
            if item["kind"] == "oauth2":
                variables.update(mc_rotation_verify_token_url=info["token_url"], mc_rotation_verify_issuer=info["issuer"])
            item["vars"] = os.path.join(work, "rotate-%s.json" % item["name"])
            with open(item["vars"], "w", encoding="utf-8") as handle:
                json.dump(variables, handle)
            emulator.admin("POST", "/reset", {"scope": "counters"})
            took = run([playbook, "-i", inventory, os.path.join(ROOT, "playbooks", "rotate.yml"),
                        "-e", "@" + item["vars"]], log, env)
            say("-- rotated %-16s in %3.0f s with %d Developers API calls" % (item["name"], took, api_calls(emulator)))

        again = run([playbook, "-i", inventory, os.path.join(ROOT, "playbooks", "rotate.yml"),
                     "-e", "@" + seeded[0]["vars"]], log, env)
        say("-- ran the %s rotation again: nothing due, no host contacted (%.0f s)" % (seeded[0]["name"], again))

        portal_item = next(item for item in seeded if item["backend"] == "portal")
        portal_item["vars"] = os.path.join(work, "rotate-%s.json" % portal_item["name"])
        with open(portal_item["vars"], "w", encoding="utf-8") as handle:
            json.dump(dict(common, mc_rotation_project_id=portal_item["project_id"], mc_rotation_kind="mtls",
                           mc_rotation_name=portal_item["name"], mc_rotation_verify_url=portal_item["verify_url"]),
                      handle)
        report_vars = os.path.join(work, "report.json")
        with open(report_vars, "w", encoding="utf-8") as handle:
            json.dump({"mc_expiry_report_projects": [p["id"] for p in projects.values()],
                       "mc_expiry_report_dest_dir": os.path.join(work, "report"),
                       "mc_expiry_report_rotation_state_dir": common["mc_rotation_state_dir"],
                       "mc_expiry_report_include_revoked": True,
                       "mc_expiry_report_api_url": info["api_url"],
                       "mc_expiry_report_consumer_key": account["consumer_key"],
                       "mc_expiry_report_signing_key_path": signing_key,
                       "mc_expiry_report_api_ca_path": info["ca_path"]}, handle)

        def report():
            run([playbook, os.path.join(ROOT, "playbooks", "report.yml"), "-e", "@" + report_vars], log, env)

        portal_part(emulator, portal_item, work, log, env, playbook, inventory, report)
        report()

        say()
        say("== What happened")
        with open(os.path.join(work, "report", "expiry-report.json"), encoding="utf-8") as handle:
            report = json.load(handle)
        by_id = dict((c["id"], c) for c in report["credentials"])
        for item in seeded:
            old = by_id.get(item["credential"]["id"], {})
            current = os.readlink(os.path.join(work, "hosts", HOSTS[0], item["name"], "current")).split("/")[-1]
            new = by_id.get(current, {})
            say("   %-16s %s (%s, %s days left) -> %s (%s, expires %s), on %d hosts"
                % (item["name"], item["credential"]["id"][:8], old.get("status", "?"), item["days"],
                   current[:8], new.get("status", "?"), (new.get("expires") or "?")[:10],
                   len([d for d in new.get("deployed_on", []) if d["current"]])))
        say()
        say("== Where to look")
        say("   expiry report      %s" % os.path.join(work, "report", "expiry-report.html"))
        say("   alerting JSON      %s" % os.path.join(work, "report", "expiry-report.json"))
        say("   a host's files     %s" % os.path.join(work, "hosts", HOSTS[0], CREDENTIALS[0][0]))
        say("                      (versions/<credential-id>/{key.p12,cert.pem,meta.json}, current -> versions/...)")
        say("   app reloads        %s" % os.path.join(work, "hosts", HOSTS[0], "app-reloads.log"))
        say("   controller state   %s (ledger, fleet cache, key store)" % common["mc_rotation_state_dir"])
        say("   playbook output    %s" % log)
        say("   run it yourself    ansible-playbook -i %s playbooks/rotate.yml -e @%s"
            % (inventory, seeded[0]["vars"]))
        say("                      (with ANSIBLE_COLLECTIONS_PATH=%s; the emulator is stopped now)" % collections)
    finally:
        emulator.stop()
        say("-- emulator stopped")


if __name__ == "__main__":
    main()
