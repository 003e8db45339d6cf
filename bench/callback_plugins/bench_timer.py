# -*- coding: utf-8 -*-
# Copyright: mcdev.credentials contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Benchmark callback: per task and per host timings, written as JSON to $BENCH_TIMER_OUT."""

from __future__ import absolute_import, division, print_function
__metaclass__ = type  # pylint: disable=invalid-name

DOCUMENTATION = """
name: bench_timer
type: aggregate
short_description: Per-task and per-host timings for the mcdev.credentials benchmarks
description:
  - Records when each task started and ended on each host and writes them as JSON to the file named by
    the environment variable E(BENCH_TIMER_OUT) when the playbook ends.
requirements:
  - enable in configuration
"""

import json
import os
import time

from ansible.plugins.callback import CallbackBase


class CallbackModule(CallbackBase):
    """Collects timings; prints nothing."""

    CALLBACK_VERSION = 2.0
    CALLBACK_TYPE = "aggregate"
    CALLBACK_NAME = "bench_timer"
    CALLBACK_NEEDS_ENABLED = True

    def __init__(self, *args, **kwargs):
        super(CallbackModule, self).__init__(*args, **kwargs)
        self._origin = time.time()
        self._tasks = []
        self._by_uuid = {}
        self._play = None

    def _now(self):
        return round(time.time() - self._origin, 4)

    def v2_playbook_on_start(self, playbook):
        self._origin = time.time()

    def v2_playbook_on_play_start(self, play):
        self._play = play.get_name()

    def _task_start(self, task):
        entry = {"play": self._play, "name": task.get_name(), "action": task.action, "start": self._now(),
                 "hosts": {}}
        self._tasks.append(entry)
        self._by_uuid[task._uuid] = entry  # pylint: disable=protected-access

    def v2_playbook_on_task_start(self, task, is_conditional):
        self._task_start(task)

    def v2_playbook_on_handler_task_start(self, task):
        self._task_start(task)

    def v2_runner_on_start(self, host, task):
        entry = self._by_uuid.get(task._uuid)  # pylint: disable=protected-access
        if entry is not None:
            entry["hosts"][host.get_name()] = {"start": self._now()}

    def _end(self, result, status):
        entry = self._by_uuid.get(result._task._uuid)  # pylint: disable=protected-access
        if entry is None:
            return
        host = result._host.get_name()  # pylint: disable=protected-access
        record = entry["hosts"].setdefault(host, {"start": self._now()})
        record["end"] = self._now()
        record["status"] = status
        if status == "ok" and result._result.get("changed"):  # pylint: disable=protected-access
            record["status"] = "changed"

    def v2_runner_on_ok(self, result):
        self._end(result, "ok")

    def v2_runner_on_failed(self, result, ignore_errors=False):
        self._end(result, "failed")

    def v2_runner_on_skipped(self, result):
        self._end(result, "skipped")

    def v2_runner_on_unreachable(self, result):
        self._end(result, "unreachable")

    def v2_playbook_on_stats(self, stats):
        path = os.environ.get("BENCH_TIMER_OUT")
        if not path:
            return
        with open(path, "w", encoding="utf-8") as handle:
            json.dump({"end": self._now(), "tasks": self._tasks}, handle)
