"""What `streamdesk up --seed` prints of the sample tickets: each answer as it is stored, then one summary.

Per ticket, the summary gives what a newcomer needs to judge the answer: the kind of ticket, the answer's
status (what happens to it next), who answered (the served adapter, or the base model when none is
served) and the reply text the customer would read. A sample conversation (a ticket the customer follows
up with a comment) is printed turn by turn: each message, then the answer to it.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path

from rich.console import Console

from streamdesk import db
from streamdesk.agent import answers
from streamdesk.seed import taubench, tickets

STATUS_MEANING = {
    "auto_reply": "sent to the customer as it is",
    "draft": "waits for a support agent to review it",
    "pending_approval": "a change waits for a supervisor's approval (streamdesk approvals list)",
    "escalated": "handed to a person",
}


def answered_by(answer: answers.Answer) -> str:
    """Who wrote the answer: the adapter served on the model, or the base model alone."""
    return f"adapter {answer.adapter} on {answer.model}" if answer.adapter else f"base model {answer.model}"


def ticket_block(sample: tickets.SampleTicket, *, number: int, total: int, details: list[str]) -> str:
    """One sample ticket as the customer wrote it, then each stored answer's detail (answers.describe) in turn."""
    about = f"customer {sample.user_id}" + (f", order {sample.order_id}" if sample.order_id else "")
    lines = [
        f"── sample {number} of {total}: {sample.kind} ({about}; writes from {sample.requester_email})",
        f"  subject: {sample.subject}",
        f"  wrote:   {sample.body}",
    ]
    for turn, detail in enumerate(details):
        if turn > 0:
            lines.append(f"  then wrote: {sample.follow_ups[turn - 1]}")
        lines.append(detail)
    return "\n".join(lines)


def summary(rows: list[tuple[str, tickets.SampleTicket, answers.Answer | None]]) -> str:
    """Per sample ticket: kind, ticket, status, who answered, and the reply text; what each status means."""
    answered = sum(answer is not None for _, _, answer in rows)
    lines = [f"sample answers: {answered} of {len(rows)} tickets answered"]
    lines.extend(f"  {status:<16}  {meaning}" for status, meaning in STATUS_MEANING.items())
    lines.append(f"  {'kind':<10} {'ticket':<13} {'status':<16}  answered by, then the reply the customer reads")
    for ticket_id, sample, answer in rows:
        if answer is None:
            lines.append(f"  {sample.kind:<10} zendesk:{ticket_id:<5} no answer yet")
            continue
        lines.append(f"  {sample.kind:<10} zendesk:{ticket_id:<5} {answer.status:<16}  {answered_by(answer)}")
        lines.extend(f"      | {line}" for line in answer.text.strip().splitlines() if line.strip())
    return "\n".join(lines)


def show_sample_answers(
    *, poll: Callable[[], None], shared_data: Path, timeout_s: float, console: Console
) -> list[str]:
    """Print each sample ticket's answer as it is stored, then the summary; return the tickets left unanswered."""
    world = taubench.load_world(path=taubench.world_path(shared_data=shared_data))
    samples = dict(zip(tickets.ticket_ids(), tickets.sample_tickets(world), strict=True))
    found: dict[str, answers.Answer] = {}
    """The last answer of each sample ticket once every message of it is answered."""
    deadline = time.monotonic() + timeout_s
    with db.connect() as conn:
        while len(found) < len(samples) and time.monotonic() < deadline:
            poll()
            for number, (ticket_id, sample) in enumerate(samples.items(), start=1):
                stored = (
                    []
                    if ticket_id in found
                    else answers.answers_for_ticket(conn, source="zendesk", ticket_id=ticket_id)
                )
                if len(stored) < 1 + len(sample.follow_ups):
                    continue
                found[ticket_id] = stored[-1]
                details = [
                    answers.describe(answer, titles=answers.citation_titles(conn, citations=answer.citations))
                    for answer in stored
                ]
                block = ticket_block(sample, number=number, total=len(samples), details=details)
                console.print(block, markup=False, highlight=False, soft_wrap=True)
            conn.commit()
            time.sleep(1.0)
    rows = [(ticket_id, sample, found.get(ticket_id)) for ticket_id, sample in samples.items()]
    console.print(summary(rows), markup=False, highlight=False, soft_wrap=True)
    return [ticket_id for ticket_id in samples if ticket_id not in found]
