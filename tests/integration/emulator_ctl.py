# -*- coding: utf-8 -*-
# Copyright: mcdev.credentials contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Start or stop the emulator around ``ansible-test integration`` (used by the Makefile's integration stage).

    python tests/integration/emulator_ctl.py start STATE_DIR CONFIG_YML
    python tests/integration/emulator_ctl.py stop STATE_DIR

``start`` launches ``python -m tests.emulator`` detached (state, ready file and
log in STATE_DIR; the test harness would stop it with this script), waits for
its ready file, and writes CONFIG_YML, the file
ansible-test passes to every target as extra vars: ``mc_emulator`` holds the
ready file's facts (api_url, admin_url, ca_path, admin_token, ...). ``stop``
ends that emulator by the pid in its ready file. Run both from the collection root.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time

START_TIMEOUT = 30.0


def start(state_dir, config_path):
    stop(state_dir, quiet=True)
    shutil.rmtree(state_dir, ignore_errors=True)  # a fresh state (and CA) for every integration run
    os.makedirs(state_dir, mode=0o700)
    ready = os.path.join(state_dir, "emulator.ready.json")
    log_path = os.path.join(state_dir, "emulator.log")
    command = [sys.executable, "-m", "tests.emulator", "--host", "127.0.0.1", "--port", "0",
               "--state", os.path.join(state_dir, "emulator.sqlite"), "--ready-file", ready]
    with open(log_path, "ab") as log:
        process = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT,  # pylint: disable=consider-using-with
                                   stdin=subprocess.DEVNULL, start_new_session=True)
    deadline = time.monotonic() + START_TIMEOUT
    while not os.path.exists(ready):
        if process.poll() is not None or time.monotonic() > deadline:
            if process.poll() is None:
                process.kill()
            with open(log_path, encoding="utf-8", errors="replace") as handle:
                sys.exit("the emulator did not start:\n" + handle.read()[-3000:])
        time.sleep(0.05)
    with open(ready, encoding="utf-8") as handle:
        info = json.load(handle)
    with open(config_path, "w", encoding="utf-8") as handle:
        # JSON is YAML; ansible-test hands this file to ansible-playbook with -e @file.
        json.dump({"mc_emulator": info}, handle, indent=2, sort_keys=True)
        handle.write("\n")
    os.chmod(config_path, 0o600)  # it carries the emulator's admin token
    print("emulator started: %s (pid %s); targets get mc_emulator from %s" % (info["api_url"], info["pid"], config_path))


def stop(state_dir, quiet=False):
    ready = os.path.join(state_dir, "emulator.ready.json")
    try:
        with open(ready, encoding="utf-8") as handle:
            pid = int(json.load(handle)["pid"])
    except (OSError, ValueError, KeyError):
        if not quiet:
            print("no emulator ready file in %s; nothing to stop" % state_dir)
        return
    try:
        os.kill(pid, signal.SIGTERM)
    except ProcessLookupError:
        pid = None
    deadline = time.monotonic() + 10
    while pid and time.monotonic() < deadline:
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            break
        time.sleep(0.1)
    else:
        if pid:
            os.kill(pid, signal.SIGKILL)
    if os.path.exists(ready):
        os.unlink(ready)
    if not quiet:
        print("emulator stopped")


def main(argv):
    if len(argv) == 3 and argv[0] == "start":
        start(argv[1], argv[2])
    elif len(argv) == 2 and argv[0] == "stop":
        stop(argv[1])
    else:
        sys.exit(__doc__)


if __name__ == "__main__":
    main(sys.argv[1:])
