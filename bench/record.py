"""What a function's cold delivery calls, for its floor to make the same calls: run (untimed) as
`python -S -B record.py <function> <event.json>` on the same PYTHONPATH as cold.py, on the same
state. Records each AWS API call with its parameters (botocore's `before-parameter-build`) and
each HTTPS request to a portal (urllib), in order. Prints one JSON line:
{"aws": [[service, operation, params], ...], "https": [[url, body], ...]}."""

import base64
import json
import sys
import urllib.request

import botocore.session
from harness import Context

aws_calls: list = []
https_calls: list = []
_init = botocore.session.Session.__init__
_open = urllib.request.OpenerDirector.open


def _plain(value):
    if isinstance(value, bytes):
        return {"__bytes__": base64.b64encode(value).decode()}
    if isinstance(value, dict):
        return {key: _plain(child) for key, child in value.items()}
    if isinstance(value, list):
        return [_plain(child) for child in value]
    return value


def _keep(params, model, **_):
    aws_calls.append([model.service_model.service_name, model.name, _plain(params)])


def _recording_init(self, *args, **kwargs):
    _init(self, *args, **kwargs)
    self.register("before-parameter-build", _keep)


def _recording_open(self, request, *args, **kwargs):
    url = request if isinstance(request, str) else request.full_url
    data = None if isinstance(request, str) else request.data
    https_calls.append([url, data.decode() if data else None])
    return _open(self, request, *args, **kwargs)


botocore.session.Session.__init__ = _recording_init
urllib.request.OpenerDirector.open = _recording_open

with open(sys.argv[2]) as file:
    event = json.load(file)

import app  # noqa: E402

response = app.handler(event, Context())
assert response["statusCode"] == 200, response
print(json.dumps({"aws": aws_calls, "https": https_calls}))
