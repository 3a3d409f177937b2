"""`make bench-decoder`: what decoding a hostile body costs, before anything authenticates it.

Every shape is built up to the 64 KiB body limit and decoded 25 times (the median is printed,
with the outcome: decoded or refused). The goal: under 50 ms for any shape; a unit test holds the
decoder linear by counting its work, so this is the figure, not the guard.

    .venv/bin/python -m bench.decoder
"""

import os
import statistics
import time

from local import template

template.use_layer()

from billing_webhooks.errors import WebhookError  # noqa: E402
from billing_webhooks.wire import decoding  # noqa: E402

LIMIT = decoding.MAX_BODY_BYTES
RUNS = int(os.environ.get("BENCH_DECODER_RUNS", 25))  # a test runs it with a small count


def _fill(unit: str, head: str = "", tail: str = "") -> str:
    """`head` + as many `unit`s as fit in the limit + `tail`."""
    return head + unit * ((LIMIT - len(head) - len(tail)) // len(unit)) + tail


SHAPES = {
    "form: `d[]=` appends": (decoding.FORM, _fill("d[]=&")[:-1]),
    "form: distinct keys": (decoding.FORM, "&".join(f"k{n}=v" for n in range(LIMIT // 10))[:LIMIT]),
    "form: numbered indexes": (decoding.FORM, "&".join(f"d[{n}]=x" for n in range(LIMIT // 10))[:LIMIT]),
    "form: keys 30 deep": (decoding.FORM, "&".join(f"k{n}" + "[a]" * 29 + "=x" for n in range(LIMIT // 100))[:LIMIT]),
    "form: keys 1000 deep": (decoding.FORM, "d" + "[a]" * ((LIMIT - 3) // 3) + "=x"),
    "json: array of numbers": (decoding.JSON, _fill("1234567890,", '{"a":[', "1]}")),
    "json: 30 deep": (decoding.JSON, '{"a":' * 29 + _fill("1,", "[", "1]")[: LIMIT - 400] + "1]" + "}" * 29),
    "json: 20000-deep arrays": (decoding.JSON, "[" * 20000 + "]" * 20000),
    # The most a form may build (decoding.MAX_FORM_PAIRS fields, MAX_FORM_NODES nodes), padded to the limit.
    "form: the most fields, 4 deep": (
        decoding.FORM,
        "&".join(f"d[{n}][a][b]=" + "v" * 50 for n in range(decoding.MAX_FORM_NODES // 4))[:LIMIT],
    ),
    "form: the most keys 30 deep": (
        decoding.FORM,
        "&".join(f"k{n}" + "[abcdefghij]" * 29 + "=x" for n in range(decoding.MAX_FORM_NODES // 30))[:LIMIT],
    ),
    "form: the most appends, long values": (
        decoding.FORM,
        "&".join(["d[]=" + "v" * 60] * (decoding.MAX_FORM_PAIRS - 1))[:LIMIT],
    ),
}


def measure(kind: str, body: str) -> tuple[float, str]:
    event = {"headers": {"content-type": kind}, "body": body, "isBase64Encoded": False}
    times, outcome = [], ""
    for _ in range(RUNS):
        started = time.perf_counter()
        try:
            decoding.decode(event, decoding.BITRIX24)
            outcome = "decoded"
        except WebhookError as error:
            outcome = f"refused {error.status}"
        times.append((time.perf_counter() - started) * 1000)
    return statistics.median(times), outcome


def main() -> None:
    print(f"| shape ({LIMIT // 1024} KiB or less) | bytes | median ms | outcome |\n|---|---|---|---|")
    worst = (0.0, "")
    for name, (kind, body) in SHAPES.items():
        median, outcome = measure(kind, body)
        print(f"| {name} | {len(body.encode())} | {median:.1f} | {outcome} |")
        worst = max(worst, (median, name))
    print(f"\nWorst shape: {worst[1]}, {worst[0]:.1f} ms (goal: under 50 ms for any shape).")


if __name__ == "__main__":
    main()
