"""Whom a bounce or an abuse report may flag. Pure: the pipeline looks the facts up.

A report's bytes come from anyone: a forged abuse report naming a requester must not silence
her, nor a forged bounce. A report flags only when it is about mail the desk sent:

- it cites (in its returned original, its In-Reply-To/References or an X-…Original-Message-ID
  header) a Message-ID the desk generated itself — 128 random bits, seen only by whom we sent
  the mail to. It flags that mail's recipient (one recipient: whatever address a forwarder's
  report names; several: those of them it names);
- or, citing none, the office's receiving server (`staff.authserv_ids`) authenticated the
  report as coming from the domain of the address it names: that mail system speaking about
  its own mailbox (a DKIM-signed report from some other domain proves nothing about hers).

Anything else is kept as an ignored report and flags nobody.
"""

from __future__ import annotations

from dataclasses import dataclass

from mailer.decide.staff import aligned
from mailer.intake.bounces import Report

CITES_OURS = "cites our mail"
NO_FAILURE = "reports no failure"  # a delay, a success notice, a "not spam" report
UNPROVEN = "cites no Message-ID of ours and is not authenticated by the office's receiving server"


@dataclass(frozen=True, slots=True)
class Standing:
    """What a report may do: the addresses it flags (none when ignored) and why."""

    addresses: tuple[str, ...]
    why: str

    @property
    def ignored(self) -> bool:
        """Whether the report flags nobody because it proves nothing (not a mere delay)."""
        return not self.addresses and self.why not in (CITES_OURS, NO_FAILURE)


def standing(
    report: Report, ours: tuple[str, ...] | None, authenticated_domain: str, own_addresses: frozenset[str]
) -> Standing:
    """Whom `report` flags. `ours`: the recipients of the desk's mail it cites (None: it cites
    none); `authenticated_domain`: the domain our receiving server authenticated its sender
    for ("" when it did not)."""
    failed = report.failed
    if ours is not None:
        if not failed:
            return Standing((), NO_FAILURE)
        named = ours if len(ours) == 1 else tuple(r.address for r in failed if r.address in ours)
        return Standing(_people(named, own_addresses), CITES_OURS)
    if not authenticated_domain:
        return Standing((), UNPROVEN)
    if not failed:
        return Standing((), NO_FAILURE)
    named = tuple(
        r.address for r in failed if r.address and aligned(r.address.rpartition("@")[2], authenticated_domain)
    )
    if not named:
        return Standing((), f"authenticated for {authenticated_domain}, which is not the domain it names")
    return Standing(_people(named, own_addresses), f"authenticated for {authenticated_domain}")


def _people(addresses: tuple[str, ...], own: frozenset[str]) -> tuple[str, ...]:
    """The addresses, without the desk's own (an office is never flagged)."""
    return tuple(a for a in dict.fromkeys(addresses) if a and a not in own)
