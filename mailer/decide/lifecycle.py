"""A ticket's states and what moves it between them. Pure: the pipeline applies the result.

    open ──staff answer──▶ answered ──7 days quiet, or #selesai/#tutup──▶ closed (rating asked)
      │                      │  ▲
      │ #tunggu              │  └── requester's pure thank-you: stays answered
      ▼                      ▼
    waiting ◀──#tunggu── requester writes again ──▶ open, with a fresh SLA clock

- `open`: awaiting the office's answer; the SLA clock runs.
- `answered`: the office answered (or settled it without a reply: #terjawab, #terimakasih,
  #spam, #duplikat); the clock is stopped.
- `waiting`: the office waits for the requester (#tunggu); the clock is paused. When the
  requester answers, it runs on (`after_wait = "pause"`: the deadline moves by the wait) or,
  for an office whose standard counts "setelah permintaan jelas" (`after_wait = "restart"`),
  a full new period starts from the clarification (event `clarified`, a new clock round).
- `closed`: done (#selesai / #tutup). An officer closing an answered ticket asks the requester
  for a rating, as the 7-day close does; never one settled as spam or duplicate.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from mailer.decide.staff import Action, Command
from mailer.settings import AfterWait
from storage.vocabulary import NOT_TO_ANSWER, Resolution, TicketState


@dataclass(frozen=True, slots=True)
class Change:
    """What happens to a ticket: its new state, the event recorded, and side effects."""

    state: TicketState
    # answered | waiting | resumed | clarified | replied | thanked | settled | closed | reopened | note
    event: str
    resolution: Resolution | None = None  # None: unchanged; Resolution.NONE clears it
    fresh_clock: bool = False  # the SLA clock starts again from this mail
    resume: bool = False  # the paused clock runs again: the deadline moves by the pause
    first_response: bool = False  # counts as the office's answer (first response, if the first)
    ask_rating: bool = False  # an officer closed an answered ticket: ask the requester to rate it
    detail: str = ""


def requester_wrote(state: str, thanks: bool, after_wait: AfterWait = AfterWait.PAUSE) -> Change | None:
    """The requester (or someone on the ticket) wrote again. A reply after an answer reopens the
    ticket with a fresh clock, except a pure thank-you; a reply while waiting resumes it: the
    paused clock runs on, or (`after_wait` RESTART) a full new period starts from the reply."""
    if state == TicketState.ANSWERED:
        if thanks:
            return Change(TicketState.ANSWERED, "thanked", detail="a thank-you: the ticket stays answered")
        detail = "the requester wrote again"
        return Change(
            TicketState.OPEN, "replied", resolution=Resolution.NONE, fresh_clock=True, detail=detail
        )
    if state == TicketState.WAITING and after_wait is AfterWait.RESTART:
        detail = "the requester answered: a full new period from now (after_wait = restart)"
        return Change(
            TicketState.OPEN, "clarified", resolution=Resolution.NONE, fresh_clock=True, detail=detail
        )
    if state == TicketState.WAITING:
        detail = "the requester answered"
        return Change(TicketState.OPEN, "resumed", resolution=Resolution.NONE, resume=True, detail=detail)
    return None  # open: nothing changes; closed: the threader decides (reopen or a new ticket)


def requester_reopened() -> Change:
    """The requester wrote on a closed ticket within `threading.reopen_days` (the threader
    decided): it opens again with a fresh clock."""
    detail = "the requester wrote again within the reopen window"
    return Change(TicketState.OPEN, "reopened", resolution=Resolution.NONE, fresh_clock=True, detail=detail)


def staff_answered(state: str) -> Change:
    """An officer's answer reached the requester: the clock stops."""
    return Change(TicketState.ANSWERED, "answered", resolution=Resolution.ANSWERED, first_response=True)


def staff_command(state: str, command: Command, resolution: str = Resolution.NONE) -> Change:
    """An officer's command word, sent only to the office (`resolution`: the ticket's before).
    Closing an answered ticket asks for a rating, as the 7-day close does; a ticket settled as
    spam or duplicate closes silently and keeps saying so."""
    detail = f"#{command.word}"
    if command.action is Action.CLOSE:
        silent = resolution in NOT_TO_ANSWER
        return Change(
            TicketState.CLOSED,
            "closed",
            resolution=None if silent else command.resolution,
            ask_rating=state == TicketState.ANSWERED and not silent,
            detail=detail,
        )
    if command.action is Action.WAIT:
        return Change(TicketState.WAITING, "waiting", detail=detail)
    if command.action is Action.SETTLE:
        return Change(TicketState.ANSWERED, "settled", resolution=command.resolution, detail=detail)
    if command.action is Action.REOPEN:
        return Change(
            TicketState.OPEN, "reopened", resolution=Resolution.NONE, fresh_clock=True, detail=detail
        )
    return Change(TicketState(state), "note", detail=detail)


def staff_comment(state: str) -> Change:
    """Staff talking inside the office about the ticket (a reply to a reminder or an escalation
    notice, #catatan): recorded, nothing changes."""
    return Change(TicketState(state), "note", detail="a reply to a notice")


def staff_note(state: str) -> Change:
    """An officer wrote to the office in the ticket's conversation without a command: per the
    issue, that too is the office answering (the officer answered elsewhere and filed it)."""
    detail = "sent to the office"
    return Change(
        TicketState.ANSWERED, "answered", resolution=Resolution.ANSWERED, first_response=True, detail=detail
    )


# Events after which the clock counts afresh from the event's time: each starts a new round
# of the clock (tickets.clock_round), with its own reminder and escalation ladder.
FRESH_CLOCK_EVENTS = frozenset({"replied", "reopened", "clarified"})


def clock_round(history: Sequence[tuple[datetime, str, str]]) -> int:
    """The round of a ticket's SLA clock after its history of (at, event, state after): 1 from
    the request, one more at each fresh start (a clarification after a wait, where the office
    restarts: `clarified`). A pause (`waiting`, then `resumed`) moves the deadline within the
    round; an answer stops the clock without ending the round."""
    return 1 + sum(1 for _, event, _ in history if event in FRESH_CLOCK_EVENTS)


def clock_basis(
    received_at: datetime, history: Sequence[tuple[datetime, str, str]], now: datetime
) -> tuple[datetime, list[tuple[datetime, datetime]]]:
    """Where a ticket's SLA clock counts from, and the spans it was paused, from its history of
    (at, event, state after): the receipt, or the last fresh start (a reply after an answer, a
    reopening, a clarification after a wait that restarts the clock); every span spent in
    `waiting` since then, the open one ending `now`."""
    start, waiting_since = received_at, None
    paused: list[tuple[datetime, datetime]] = []
    for at, event, state in history:
        if event in FRESH_CLOCK_EVENTS:
            start, waiting_since = at, None
            paused = []
        elif state == TicketState.WAITING:
            waiting_since = waiting_since or at
        elif waiting_since is not None:
            paused.append((waiting_since, at))
            waiting_since = None
    if waiting_since is not None:
        paused.append((waiting_since, now))
    return start, paused
