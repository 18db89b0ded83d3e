"""The command line's ``train``: start a job through the HTTP API and follow it to its end.

The job's Server-Sent Events drive a one-line progress bar (rewritten with ``\\r``); a dropped
connection is resumed with ``Last-Event-ID``, so no event is missed or repeated. Ctrl-C
cancels the job.
"""

from __future__ import annotations

import json
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any, TextIO
from urllib.parse import quote

import httpx

JSON = dict[str, Any]
RECONNECTS = 20
BAR_WIDTH = 30


@dataclass(frozen=True)
class Event:
    """One Server-Sent Event."""

    id: int
    kind: str
    data: JSON


def parse_events(lines: Iterator[str]) -> Iterator[Event]:
    """Events of a ``text/event-stream``; comments and ``retry`` lines are skipped."""
    fields: dict[str, str] = {}
    data: list[str] = []
    for line in lines:
        if line == "":
            if data:
                yield Event(
                    int(fields.get("id", "0")),
                    fields.get("event", "message"),
                    json.loads("\n".join(data)),
                )
            fields, data = {}, []
        elif not line.startswith(":"):
            name, _, value = line.partition(":")
            value = value.removeprefix(" ")
            if name == "data":
                data.append(value)
            else:
                fields[name] = value


def bar(job: JSON, data: JSON) -> str:
    """``[#####.....]  45%  epoch 9/20  step 180/400  loss 0.0123  eta 3s``."""
    total = max(int(job["total_steps"]), 1)
    step = int(data.get("step") or 0)
    done = round(BAR_WIDTH * step / total)
    parts = [
        f"[{'#' * done}{'.' * (BAR_WIDTH - done)}] {100 * step // total:3d}%",
        f"epoch {data.get('epoch', 0)}/{job['epochs']}",
        f"step {step}/{total}",
    ]
    if data.get("loss") is not None:
        parts.append(f"loss {data['loss']:.6g}")
    if data.get("validation_loss") is not None:
        parts.append(f"val {data['validation_loss']:.6g}")
    if data.get("eta_seconds") is not None and data.get("state") == "running":
        parts.append(f"eta {data['eta_seconds']:.0f}s")
    return "  ".join(parts)


def follow(client: httpx.Client, job: JSON, out: TextIO) -> JSON:
    """Print the job's progress until its ``end`` event; returns that event's data."""
    last = 0
    failures = 0
    while True:
        try:
            headers = {"Last-Event-ID": str(last), "Accept": "text/event-stream"}
            with client.stream("GET", f"/v1/jobs/{job['id']}/events", headers=headers) as r:
                if r.status_code != 200:
                    r.read()
                    raise RuntimeError(_problem(r))
                for event in parse_events(r.iter_lines()):
                    last, failures = event.id, 0
                    out.write("\r" + bar(job, event.data))
                    out.flush()
                    if event.kind == "end":
                        out.write("\n")
                        return event.data
        except httpx.TransportError:
            failures += 1
            if failures > RECONNECTS:
                raise
            time.sleep(min(0.2 * 2**failures, 5.0))


def train(
    url: str, model: str, body: JSON, out: TextIO | None = None, err: TextIO | None = None
) -> int:
    """Start a job on `model` with `body`, follow it; 0 if it succeeded, else 1. Progress goes
    to `out`, errors to `err` (standard output and error by default)."""
    out = out or sys.stdout
    err = err or sys.stderr
    timeout = httpx.Timeout(30.0, read=None)  # the event stream may be quiet for a while
    with httpx.Client(base_url=url, timeout=timeout) as client:
        try:
            response = client.post(f"/v1/models/{quote(model, safe='')}/train", json=body)
        except httpx.TransportError as exc:
            err.write(f"backprop-service: cannot reach {url}: {exc}\n")
            return 1
        if response.status_code != 202:
            err.write(f"backprop-service: {_problem(response)}\n")
            return 1
        job: JSON = response.json()
        out.write(
            f"job {job['id']}: model {job['model']}, {job['epochs']} epochs of "
            f"{job['steps_per_epoch']} steps (seed {job['seed']})\n"
        )
        try:
            final = follow(client, job, out)
        except KeyboardInterrupt:
            client.post(f"/v1/jobs/{job['id']}/cancel")
            out.write(f"\njob {job['id']} cancelled\n")
            return 130
        except (httpx.TransportError, RuntimeError) as exc:
            err.write(f"\nbackprop-service: lost the job's events: {exc}\n")
            return 1
    state = final["state"]
    summary = f"job {job['id']} {state}: model {job['model']} at version {final['version']}"
    if final.get("loss") is not None:
        summary += f", loss {final['loss']:.6g}"
    if final.get("stopped_early"):
        summary += " (stopped early)"
    if final.get("error"):
        summary += f": {final['error']}"
    out.write(summary + "\n")
    return 0 if state == "succeeded" else 1


def _problem(response: httpx.Response) -> str:
    try:
        detail = response.json().get("detail")
    except ValueError:
        detail = None
    return f"HTTP {response.status_code}: {detail or response.text[:500]}"
