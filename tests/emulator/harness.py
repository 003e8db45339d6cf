"""Start, drive and stop the emulator from tests.

    emulator = Emulator.start(tmp_path)          # subprocess, waits for the ready file
    emulator.info["api_url"], emulator.info["ca_path"], ...
    account = emulator.admin("POST", "/accounts", {})
    emulator.restart()                           # same ports, same state file
    emulator.stop()
"""
import atexit
import json
import os
import signal
import subprocess
import sys
import time

import requests

COLLECTION_ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
START_TIMEOUT = 20.0


class EmulatorError(RuntimeError):
    """The emulator did not start, or an admin call failed."""

    def __init__(self, message, status=None, body=None):
        super().__init__(message)
        self.status = status
        self.body = body


class Emulator:
    """One emulator subprocess with its own state directory."""

    def __init__(self, workdir, rules=None, port=0, mtls_port=0, variant=None):
        self.workdir = str(workdir)
        self.rules = rules
        self.variant = variant
        self.port = port
        self.mtls_port = mtls_port
        self.state_path = os.path.join(self.workdir, "emulator.sqlite")
        self.ready_path = os.path.join(self.workdir, "emulator.ready.json")
        self.log_path = os.path.join(self.workdir, "emulator.log")
        self.process = None
        self.info = None
        self._session = requests.Session()
        # REQUESTS_CA_BUNDLE in the environment would override Session.verify; admin calls trust only our CA.
        self._session.trust_env = False

    @classmethod
    def start(cls, tmpdir, rules=None, port=0, mtls_port=0, variant=None):
        """Launch an emulator whose state lives in tmpdir and wait until it is ready (variant: --variant)."""
        os.makedirs(str(tmpdir), exist_ok=True)
        emulator = cls(tmpdir, rules, port, mtls_port, variant)
        emulator._launch()
        # Belt and braces with --exit-with-parent: stop on a normal interpreter exit too.
        atexit.register(emulator.stop)
        return emulator

    def _launch(self):
        if os.path.exists(self.ready_path):
            os.unlink(self.ready_path)
        command = [sys.executable, "-m", "tests.emulator", "--host", "127.0.0.1",
                   "--port", str(self.port), "--mtls-port", str(self.mtls_port),
                   "--state", self.state_path, "--ready-file", self.ready_path, "--exit-with-parent"]
        if self.rules:
            command += ["--rules", json.dumps(self.rules)]
        if self.variant:
            command += ["--variant", self.variant]
        with open(self.log_path, "ab") as log:
            self.process = subprocess.Popen(  # pylint: disable=consider-using-with
                command, cwd=COLLECTION_ROOT, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL
            )
        deadline = time.monotonic() + START_TIMEOUT
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise EmulatorError("emulator exited with %s during start:\n%s" % (self.process.returncode, self.log_tail()))
            if os.path.exists(self.ready_path):
                with open(self.ready_path, encoding="utf-8") as handle:
                    self.info = json.load(handle)
                # Later restarts reuse the ports the clients already know.
                self.port, self.mtls_port = self.info["port"], self.info["mtls_port"]
                self._session.verify = self.info["ca_path"]
                return
            time.sleep(0.02)
        self.stop()
        raise EmulatorError("emulator not ready after %.0f s:\n%s" % (START_TIMEOUT, self.log_tail()))

    def log_tail(self, lines=40):
        try:
            with open(self.log_path, encoding="utf-8", errors="replace") as handle:
                return "".join(handle.readlines()[-lines:])
        except OSError:
            return ""

    @property
    def running(self):
        return self.process is not None and self.process.poll() is None

    def admin_response(self, method, path, json=None):  # pylint: disable=redefined-outer-name
        """The raw requests.Response of an admin call (path relative to /_admin, or absolute)."""
        if not path.startswith("/_admin"):
            path = "/_admin" + (path if path.startswith("/") else "/" + path)
        base = self.info["admin_url"][: -len("/_admin")]
        return self._session.request(method, base + path, json=json, timeout=30,
                                     headers={"X-Admin-Token": self.info["admin_token"]})

    def admin(self, method, path, json=None):  # pylint: disable=redefined-outer-name
        """Call the admin path and return its JSON; EmulatorError on a 4xx/5xx."""
        response = self.admin_response(method, path, json)
        try:
            body = response.json()
        except ValueError:
            body = response.text
        if response.status_code >= 400:
            raise EmulatorError("%s %s -> %s: %s" % (method, path, response.status_code, body),
                                response.status_code, body)
        return body

    # Shortcuts used by many tests.
    def new_account(self, **fields):
        return self.admin("POST", "/accounts", fields)

    def new_project(self, account_id, auth_model="OAUTH10A", oauth2_enabled=False, **fields):
        fields.update({"account_id": account_id, "authModel": auth_model, "oauth2Enabled": oauth2_enabled})
        return self.admin("POST", "/projects", fields)

    def restart(self):
        """Stop and start again on the same ports with the same state file."""
        self.stop()
        self._launch()
        return self

    def stop(self, timeout=10):
        if self.process is None:
            return
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout)
        self.process = None

    def __enter__(self):
        return self

    def __exit__(self, *exc_info):
        self.stop()
        return False
