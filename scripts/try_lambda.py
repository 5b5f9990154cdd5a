#!/usr/bin/env python3
"""Runs the real sesguard Lambda locally against moto and shows what it publishes.

    scripts/try-lambda.sh [EVENT_FILE ...]      (the wrapper starts moto and the venv)

Builds in moto what template.yaml defines for the function (the state table, the signals topic
and its KMS key, the function's environment with the template's default parameters), subscribes
an SQS queue to the topic, runs the function under `cargo lambda watch`, invokes it once per
event file (EventBridge events, as the deployed function receives them; default: every sample
in events/), then prints every message SNS received: its Subject and the signal JSON. Stops
everything it started. The first invocation waits for cargo to build the function.

Exit status: 0 when every invocation succeeded, 1 otherwise (the messages are printed anyway).
"""

import os
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests"))

from cfn_template import TemplateError, load  # noqa: E402
from e2e_lambda import Aws, Watch, is_error_output  # noqa: E402


def main(argv):
    endpoint = os.environ.get("SESGUARD_TEST_ENDPOINT")
    if not endpoint:
        print("try-lambda: no moto endpoint; run scripts/try-lambda.sh, not this file", file=sys.stderr)
        return 2
    files = [Path(a) for a in argv] or sorted((ROOT / "events").glob("*.json"))
    missing = [str(f) for f in files if not f.is_file()]
    if missing:
        print(f"try-lambda: no such event file: {', '.join(missing)}", file=sys.stderr)
        return 2
    region = os.environ.get("AWS_REGION") or os.environ.get("AWS_DEFAULT_REGION") or "us-east-1"
    try:
        aws = Aws(endpoint, region, load(ROOT / "template.yaml"), {})
        _, template_env = aws.function_environment()
    except TemplateError as err:
        print(f"try-lambda: template.yaml: {err}", file=sys.stderr)
        return 2
    print(f"try-lambda: moto at {endpoint}: table {aws.table}, topic {aws.topic}, queue {aws.queue}", file=sys.stderr)
    env = {
        "AWS_ENDPOINT_URL": endpoint,
        "AWS_ACCESS_KEY_ID": os.environ.get("AWS_ACCESS_KEY_ID", "testing"),
        "AWS_SECRET_ACCESS_KEY": os.environ.get("AWS_SECRET_ACCESS_KEY", "testing"),
        "AWS_REGION": region,
        "AWS_DEFAULT_REGION": region,
        **template_env,
        "AWS_LAMBDA_LOG_LEVEL": "warn",
    }
    workdir = Path(tempfile.mkdtemp(prefix="sesguard-try-"))  # outside the watched repo
    watch = Watch(ROOT, env, workdir, name="try-lambda")
    failed = 0
    try:
        ready, why = watch.wait_ready()
        if not ready:
            print(f"try-lambda: {why}; log: {watch.log_path}", file=sys.stderr)
            return 1
        print("try-lambda: function running under cargo lambda watch (the first invocation builds it)", file=sys.stderr)
        for path in files:
            code, output = watch.invoke(path.resolve())
            if is_error_output(code, output):
                failed += 1
                print(f"try-lambda: invoke {path}: FAILED\n{output.strip()}", file=sys.stderr)
            else:
                print(f"try-lambda: invoke {path}: ok", file=sys.stderr)
        envelopes = aws.drain()
    finally:
        watch.stop()
    for envelope in envelopes:
        print(f"--- Subject: {envelope.get('Subject')}")
        print(envelope.get("Message"))
    print(
        f"try-lambda: {len(files)} invocations, {failed} failed; {len(envelopes)} messages published "
        f"(function log: {watch.log_path})",
        file=sys.stderr,
    )
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
