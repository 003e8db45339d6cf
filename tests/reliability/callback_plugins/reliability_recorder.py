"""Callback used by the reliability suites: records every task result, and can crash the run on purpose.

RELIABILITY_RESULTS=<file>               one JSON line per task result (host, task, status, result)
                                         and one per task start
RELIABILITY_KILL_AFTER_TASK=<k>          SIGKILL the whole process group (ansible-playbook and its workers)
                                         right after the k-th task ended, i.e. when task k+1 starts or the
                                         play recap is due
"""
from __future__ import absolute_import, division, print_function

__metaclass__ = type  # pylint: disable=invalid-name

import json
import os
import signal
import time

from ansible.plugins.callback import CallbackBase

DOCUMENTATION = """
name: reliability_recorder
type: aggregate
short_description: record task results and crash on purpose (tests only)
description: Test helper of tests/reliability; not shipped as a plugin of the collection.
"""


class CallbackModule(CallbackBase):
    CALLBACK_VERSION = 2.0
    CALLBACK_TYPE = "aggregate"
    CALLBACK_NAME = "reliability_recorder"
    CALLBACK_NEEDS_ENABLED = True

    def __init__(self, *args, **kwargs):
        super(CallbackModule, self).__init__(*args, **kwargs)
        self._path = os.environ.get("RELIABILITY_RESULTS")
        kill = os.environ.get("RELIABILITY_KILL_AFTER_TASK")
        self._kill_after = int(kill) if kill else None
        self._tasks = 0

    def _write(self, record):
        if not self._path:
            return
        record["t"] = round(time.time(), 3)
        # No fsync: the kill is a SIGKILL of processes, not a power cut; what was written is in the page cache
        # and survives the kill, and an fsync per event only made every task slower.
        with open(self._path, "a") as handle:
            handle.write(json.dumps(record, default=str, sort_keys=True) + "\n")

    def _maybe_kill(self):
        if self._kill_after is not None and self._tasks == self._kill_after:
            self._write({"event": "killed", "after_task": self._tasks})
            os.killpg(os.getpgrp(), signal.SIGKILL)

    def _task_start(self, task):
        self._maybe_kill()
        self._tasks += 1
        self._write({"event": "task", "index": self._tasks, "task": task.get_name()})

    def v2_playbook_on_task_start(self, task, is_conditional):
        self._task_start(task)

    def v2_playbook_on_handler_task_start(self, task):
        self._task_start(task)

    def _result(self, status, result):
        self._write({"event": "result", "index": self._tasks, "status": status, "host": result._host.get_name(),
                     "task": result._task.get_name(), "result": result._result})

    def v2_runner_on_ok(self, result):
        self._result("ok", result)

    def v2_runner_on_failed(self, result, ignore_errors=False):
        self._result("ignored" if ignore_errors else "failed", result)

    def v2_runner_on_skipped(self, result):
        self._result("skipped", result)

    def v2_runner_on_unreachable(self, result):
        self._result("unreachable", result)

    def v2_playbook_on_stats(self, stats):
        self._maybe_kill()
        self._write({"event": "stats", "tasks": self._tasks})
