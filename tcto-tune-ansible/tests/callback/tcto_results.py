# A notification callback for the e2e tests: every task result, whole, as
# one JSON line in the file named by $TCTO_RESULTS. ansible-core has no JSON
# stdout callback, its ad-hoc output leaves out `failed` and `diff`, and
# the tree callback keeps only the last result per host; this keeps each
# result as the module returned it, with the status Ansible gave it.
from __future__ import annotations

import json
import os

from ansible.plugins.callback import CallbackBase

DOCUMENTATION = """
name: tcto_results
type: notification
short_description: write each task result as a JSON line to $TCTO_RESULTS
description: [Test helper of tcto-tune.]
requirements: [TCTO_RESULTS set to a file path]
"""


class CallbackModule(CallbackBase):
    CALLBACK_VERSION = 2.0
    CALLBACK_TYPE = "notification"
    CALLBACK_NAME = "tcto_results"
    CALLBACK_NEEDS_ENABLED = True

    def _write(self, status, result):
        line = {
            "task": result._task.get_name(),
            "host": result._host.get_name(),
            "status": status,
            "result": result._result,
        }
        with open(os.environ["TCTO_RESULTS"], "a", encoding="utf-8") as f:
            f.write(json.dumps(line, default=str) + "\n")

    def v2_runner_on_ok(self, result):
        self._write("ok", result)

    def v2_runner_on_failed(self, result, ignore_errors=False):
        self._write("failed", result)

    def v2_runner_on_skipped(self, result):
        self._write("skipped", result)

    def v2_runner_on_unreachable(self, result):
        self._write("unreachable", result)
