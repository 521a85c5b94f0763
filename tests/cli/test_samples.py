"""What `streamdesk up --seed` prints of the sample answers: each ticket as written, then a summary a newcomer can
read (kind, status and its meaning, who answered, the reply), read from answers stored in the real database."""

from __future__ import annotations

import io
from pathlib import Path

import psycopg
import pytest
from rich.console import Console

from streamdesk.agent import answers
from streamdesk.cli import samples
from streamdesk.seed import taubench, tickets

MODEL = "smollm2-135m-instruct"


def stored_answer(
    ticket_id: str, *, status: answers.AnswerStatus, text: str, adapter: str | None = None, event: str = "created"
) -> answers.Answer:
    return answers.Answer(
        event_id=f"zendesk:{ticket_id}:{event}",
        source="zendesk",
        ticket_id=ticket_id,
        status=status,
        text=text,
        model=MODEL,
        adapter=adapter,
        prompt_version="test",
    )


@pytest.mark.stack
def test_every_sample_answer_is_printed_with_kind_status_who_answered_and_reply(
    conn: psycopg.Connection, tmp_path: Path
) -> None:
    ids = tickets.ticket_ids()
    kinds = tickets.ticket_kinds()
    for ticket_id in ids[:-1]:
        adapter = "sft-bootstrap-1" if kinds[ticket_id] == "track" else None
        status: answers.AnswerStatus = "escalated" if kinds[ticket_id] == "human" else "draft"
        text = f"Reply to the {kinds[ticket_id]} ticket.\n\nSecond paragraph."
        answers.store_answer(conn, answer=stored_answer(ticket_id, status=status, text=text, adapter=adapter))
    yes = "A supervisor must approve cancel pending order before it takes effect."
    answers.store_answer(conn, answer=stored_answer(ids[1], status="pending_approval", text=yes, event="comment"))
    out = io.StringIO()
    console = Console(file=out, width=240)
    waiting = samples.show_sample_answers(poll=lambda: None, shared_data=tmp_path, timeout_s=3, console=console)
    printed = out.getvalue()
    assert waiting == [ids[-1]]
    world = taubench.load_world(path=taubench.BUNDLED_DB)  # no shared data under tmp_path: the bundled mini world
    for number, sample in enumerate(tickets.sample_tickets(world)[:-1], start=1):
        assert f"── sample {number} of {len(ids)}: {sample.kind} (customer {sample.user_id}" in printed
        assert f"  wrote:   {sample.body}" in printed
    summary = printed[printed.index("sample answers: 8 of 9 tickets answered") :]
    assert f"  track      zendesk:{ids[0]}  draft             adapter sft-bootstrap-1 on {MODEL}" in summary
    assert f"  human      zendesk:{ids[7]}  escalated         base model {MODEL}" in summary
    assert "  then wrote: Yes, please go ahead.\n" in printed  # the conversation, turn by turn
    assert printed.index("Reply to the cancel ticket.") < printed.index("then wrote:") < printed.index(yes)
    assert f"  cancel     zendesk:{ids[1]}  pending_approval  base model {MODEL}\n      | {yes}" in summary
    assert f"  no_answer  zendesk:{ids[8]}  no answer yet" in summary
    assert all(f"  {status:<16}  {meaning}" in summary for status, meaning in samples.STATUS_MEANING.items())
