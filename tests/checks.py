"""The pass/fail reporter of the Python tests (template_check.py, e2e_lambda.py).

    checks = Checks()
    checks.check("what is checked", ok, "detail shown when it fails")
    ...
    sys.exit(checks.finish())

`check` prints one line per check (`PASS what` or `FAIL what: detail`); `finish` prints the
closing line `N passed, M failed` and returns the exit status (1 on any failure). When
SESGUARD_CHECKS_REPORT names a file, `finish` also writes the counts there as JSON
(`{"passed": N, "failed": M}`): scripts/test.sh adds them to its total from that file, not by
reading the output.
"""

from __future__ import annotations

import json
import os

REPORT_ENV = "SESGUARD_CHECKS_REPORT"


class Checks:
    def __init__(self):
        self.passed = 0
        self.failed = 0

    def check(self, what: str, ok: bool, detail: str = "") -> bool:
        # flush: the lines interleave with the output of the processes a test starts.
        if ok:
            self.passed += 1
            print(f"PASS {what}", flush=True)
        else:
            self.failed += 1
            print(f"FAIL {what}" + (f": {detail}" if detail else ""), flush=True)
        return ok

    def finish(self) -> int:
        print(f"{self.passed} passed, {self.failed} failed", flush=True)
        report = os.environ.get(REPORT_ENV)
        if report:
            with open(report, "w", encoding="utf-8") as f:
                json.dump({"passed": self.passed, "failed": self.failed}, f)
                f.write("\n")
        return 1 if self.failed else 0
