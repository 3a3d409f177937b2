"""Run in a bare Python 3.13 (-S: no site-packages), with PYTHONPATH laid out as Lambda's:
the function's code, the layer's python/, then the runtime's boto3. Prints one JSON line."""

import json
import sys
import uuid
from pathlib import Path


class Context:
    function_name = sys.argv[1]
    memory_limit_in_mb = 512
    invoked_function_arn = f"arn:aws:lambda:us-east-1:123456789012:function:{sys.argv[1]}"
    aws_request_id = str(uuid.uuid4())

    @staticmethod
    def get_remaining_time_in_millis() -> int:
        return 10_000


event = json.loads(Path(sys.argv[2]).read_text())
import app  # noqa: E402 (the function's module, found on PYTHONPATH like Lambda's /var/task)
import pydantic  # noqa: E402

response = app.handler(event, Context())
print(json.dumps({"response": response, "app": app.__file__, "pydantic": pydantic.__file__}))
