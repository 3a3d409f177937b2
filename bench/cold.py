"""One cold start, as Lambda's init + first invoke: run as `python -S -B cold.py <function> <event.json>`
with PYTHONPATH = the built function, the built layer's python/, the runtime's boto3 (read-only:
-B writes no bytecode, so only what was shipped compiled loads compiled). Prints one JSON line."""

import json
import sys
import time

from harness import Context, peak_rss_mb, reset_peak_rss

reset_peak_rss()

with open(sys.argv[2]) as file:
    event = json.load(file)

started = time.perf_counter()
import app  # noqa: E402 (Lambda's init: the handler's module)

imported = time.perf_counter()
response = app.handler(event, Context())
answered = time.perf_counter()
print(
    json.dumps(
        {
            "init_ms": (imported - started) * 1000,
            "first_ms": (answered - imported) * 1000,
            "cold_ms": (answered - started) * 1000,
            "status": response["statusCode"],
            "peak_rss_mb": peak_rss_mb(),
        }
    )
)
