"""A scripted person at the portal: reads only the JSON work order and carries it out against the emulator's
portal-like admin path (paste the CSR, type REVOKE), then brings back what the portal showed into the inbox
file the work order names. What it brings back can be spoiled, to try wrong material."""

from __future__ import annotations

import json


class ScriptedPerson:
    def __init__(self, emulator, bring_id=False):
        self.emulator = emulator
        # Also bring back the id the credentials screen shows (the work order's optional credential_id), so that
        # the hosts' version folders carry Mastercard's own id.
        self.bring_id = bring_id
        self.followed = []  # the work orders carried out, as read

    def read(self, work_order_path):
        with open(work_order_path, encoding="utf-8") as handle:
            return json.load(handle)

    def add(self, work_order_path, drop=True):
        """Carry out a create work order; returns (what the portal showed, what is brought back)."""
        order = self.read(work_order_path)
        assert order["step"] == "create", order
        body = {"type": "MTLS" if order["kind"] == "mtls" else "SIGNING", "environment": order["environment"].upper(),
                "alias": order["alias"], "csr": order["csr"]}
        if order["kind"] != "mtls":
            body["oauthVersion"] = {"oauth1": "1.0a", "oauth2": "2.0"}[order["kind"]]
        shown = self.emulator.admin("POST", "/portal/projects/%s/credentials" % order["project_id"], body)
        self.followed.append(order)
        material = self.bring_back(order, shown)
        if drop:
            self.drop(order, material)
        return shown, material

    def bring_back(self, order, shown):
        extra = {"credential_id": shown["id"]} if self.bring_id else {}
        if order["kind"] == "mtls":
            with open(self.emulator.info["ca_path"], encoding="ascii") as handle:
                return dict(extra, certificate=shown["certificate"] + handle.read())
        fields = {"consumer_key": "consumerKey", "client_id": "clientId", "kid": "kid"}
        material = dict(extra, **{name: shown[fields[name]] for name in order["bring_back"] if name in fields})
        if "certificate" in order["bring_back"]:
            with open(self.emulator.info["ca_path"], encoding="ascii") as handle:
                material["certificate"] = shown["certificate"] + handle.read()
        return material

    @staticmethod
    def drop(order, material):
        with open(order["inbox"], "w", encoding="utf-8") as handle:
            if order["kind"] == "mtls" and set(material) <= {"certificate"}:
                handle.write(material["certificate"])
            else:
                json.dump(material, handle)

    def revoke(self, work_order_path, drop=True):
        order = self.read(work_order_path)
        assert order["step"] == "revoke" and order["type"] == "REVOKE", order
        # On the credentials screen the person finds the credential by its alias.
        screen = self.emulator.admin("GET", "/portal/projects/%s/credentials?environment=%s" % (
            order["project_id"], order["environment"].upper()))["items"]
        active = [item for item in screen if item["status"] == "ACTIVE"]
        # by the id the work order names, else (a credential known only by its alias) by the alias
        row = next((item for item in active if item["id"] == order["credential_id"]), None) or \
            next(item for item in active if item["alias"] == order["alias"])
        shown = self.emulator.admin("POST", "/portal/projects/%s/credentials/%s/revoke" % (
            order["project_id"], row["id"]), {"confirm": order["type"]})
        self.followed.append(order)
        if drop:
            with open(order["inbox"], "w", encoding="utf-8") as handle:
                json.dump({"revoked": True}, handle)
        return shown
