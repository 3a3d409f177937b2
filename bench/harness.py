"""What the benchmark's child processes share (imported before any timing starts)."""

import sys


class Context:
    """The Lambda context attributes the handlers and Powertools read."""

    function_name = sys.argv[1] if len(sys.argv) > 2 else "floor"
    memory_limit_in_mb = 512
    invoked_function_arn = f"arn:aws:lambda:us-east-1:123456789012:function:{function_name}"
    aws_request_id = "bench"

    @staticmethod
    def get_remaining_time_in_millis() -> int:
        return 10_000


def reset_peak_rss() -> None:
    """A forked child inherits its parent's RSS high-water mark: start this process's own."""
    with open("/proc/self/clear_refs", "w") as refs:
        refs.write("5")


def peak_rss_mb() -> float:
    with open("/proc/self/status") as status:
        return next(int(line.split()[1]) for line in status if line.startswith("VmHWM:")) / 1024
