"""`streamdesk bench hotswap`: tickets answered on `streamdesk up` while the serving adapter changes under them.

A fresh `up --agent` (the bootstrap switched off: the base model serves) gets two registered adapters,
copies of the shipped SFT bootstrap's weights under versions of their own (the bench measures the swap,
not the adapters); the bench posts N tickets from a known customer, and while the agent works through
them it changes the serving adapter through the API at evenly spaced points (promote the first, promote
the second, roll back to the first, roll back to the base model). Counted from the database and the agent's log:

- `requests`: tickets answered; `failed`: tickets with no answer within the time limit;
- `mixed`: answers whose model calls (audit trail) ran under more than one adapter, or under another
  adapter than the answer records;
- `swaps`: changes the agent prepared; `swap_s`: the longest time from a change's `model` event to its
  adapter loaded and serving from the next ticket on (`swap_p50_s` the median).
"""

from __future__ import annotations

import functools
import json
import os
import re
import shutil
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

import httpx

from evals.bench.roundtrip import UpProcess
from streamdesk.training import default_adapter, registry, service

KEY = "hotswap-bench-admin-key-0123456789"
OPERATORS = json.dumps({"hotswap-bench": {"roles": ["agent", "supervisor", "admin"], "token": KEY}})
AUTH = {"X-API-Key": KEY}
SWAP_LINE = re.compile(r"adapter swap (\{.*\})")


def swaps_in(log: str) -> list[dict[str, Any]]:
    """The swaps the agent's log records (`agent/hotswap.py`), after the start-up one."""
    found = [json.loads(match.group(1)) for match in SWAP_LINE.finditer(log)]
    return [swap for swap in found if swap["event_id"] != "start"]


def register_copy(up: UpProcess, *, name: str) -> str:
    """Register a copy of the shipped SFT bootstrap as a candidate of its own, as a retrain would; its version."""
    [shipped] = [path for path in default_adapter.SHIPPED.iterdir() if (path / "adapter_config.json").is_file()]
    staging = up.state_dir / f".staging-{name}"
    shutil.copytree(shipped, staging)
    with up.connect() as conn:
        return registry.register_candidate(
            conn,
            staging_dir=staging,
            adapters_dir=up.state_dir / "adapters",
            base_model=service.BASE_MODEL,
            parent=None,
            dataset_digest="0" * 64,
            config={"copy_of": shipped.name, "bench": name},
            metrics={},
        ).version


def mixed_answers(up: UpProcess, *, ticket_ids: list[str]) -> int:
    """Answers whose model calls ran under two adapters, or under another one than the answer records."""
    with up.connect() as conn:
        rows = conn.execute(
            "SELECT a.answer_id, coalesce(a.adapter, ''), "
            "array_agg(DISTINCT coalesce(r.content::jsonb ->> 'adapter_version', '')) "
            "FROM answers a JOIN audit_records r ON r.trace_id = a.trace_id AND r.action = 'model_call' "
            "WHERE a.ticket_id = ANY(%s) GROUP BY a.answer_id, a.adapter",
            (ticket_ids,),
        ).fetchall()
    return sum(1 for _, adapter, used in rows if list(used) != [adapter])


def answered(up: UpProcess, *, ticket_ids: list[str]) -> int:
    with up.connect() as conn:
        row = conn.execute("SELECT count(*) FROM answers WHERE ticket_id = ANY(%s)", (ticket_ids,)).fetchone()
    return int(row[0]) if row else 0


def change(up: UpProcess, step: str, *, attempts: int = 20) -> None:
    """One change of the serving adapter through the API: promote `step`, or roll back (a 503 is asked again)."""
    path = "/models/rollback" if step == "rollback" else f"/models/promote/{step}"
    for _ in range(attempts):
        response = httpx.post(f"{up.api_url}{path}", json={"reason": "bench"}, headers=AUTH, timeout=60)
        if response.status_code != 503:
            break
        time.sleep(float(response.headers.get("Retry-After", "2")))
    response.raise_for_status()


def run(*, tickets: int = 12, timeout_s: float = 1800.0) -> dict[str, Any]:
    """Start `up`, post `tickets`, change the serving adapter 4 times while they are answered, count."""
    ticket_ids = [f"HOTSWAP-{n}" for n in range(tickets)]
    with tempfile.TemporaryDirectory(prefix="streamdesk-hotswap-") as tmp:
        up = UpProcess(
            Path(tmp) / "state",
            broker_port=int(os.environ.get("HOTSWAP_BROKER_PORT", "19492")),
            api_port=int(os.environ.get("HOTSWAP_API_PORT", "8104")),
            env={"STREAMDESK_IDENTITY__OPERATORS": OPERATORS},
        )
        up.start()
        try:
            up.ready()
            first, second = register_copy(up, name="a"), register_copy(up, name="b")
            plan = [first, second, "rollback", "rollback"]  # base -> first -> second -> first -> base
            for n, ticket_id in enumerate(ticket_ids):
                body = {"subject": "Where is my order?", "body": f"Its status, please ({n})", "customer_id": "c1"}
                body["ticket_id"] = ticket_id
                response = httpx.post(f"{up.api_url}/tickets", json=body, headers=AUTH, timeout=30)
                response.raise_for_status()
            agent_log = up.state_dir / "logs" / "agent.log"
            deadline = time.monotonic() + timeout_s

            def answered_at_least(count: int) -> bool:
                return answered(up, ticket_ids=ticket_ids) >= count or time.monotonic() > deadline

            def swapped(count: int) -> bool:
                return len(swaps_in(agent_log.read_text(errors="replace"))) >= count

            for index, step in enumerate(plan):  # a change after each share of the tickets is answered
                due = (index + 1) * tickets // (len(plan) + 1)
                up.wait_for(functools.partial(answered_at_least, due), what=f"{due} answers", timeout_s=timeout_s)
                change(up, step)
                up.wait_for(functools.partial(swapped, index + 1), what=f"swap {index + 1}", timeout_s=300)
            up.wait_for(functools.partial(answered_at_least, tickets), what="every answer", timeout_s=timeout_s)
            done = answered(up, ticket_ids=ticket_ids)
            mixed = mixed_answers(up, ticket_ids=ticket_ids)
            swaps = swaps_in(agent_log.read_text(errors="replace"))
        finally:
            up.stop()
    seconds = [float(swap["swap_s"]) for swap in swaps]
    return {
        "requests": done,
        "failed": tickets - done,
        "mixed": mixed,
        "swaps": len(swaps),
        "swap_s": round(max(seconds), 3) if seconds else None,
        "swap_p50_s": round(statistics.median(seconds), 3) if seconds else None,
    }
