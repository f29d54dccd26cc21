"""Review state of a result: disputes between reviewers, and the sign-off rules a firm sets.

A sentence is **disputed** when, since its last "resolve", at least two people made a decision
(agree / override) on it and their latest labels differ: the preparer overrode the model and
the reviewer overrode it back, or two reviewers chose different labels. The dispute is
resolved when the parties end up on the same label (one of them agrees with, or overrides to,
the other's label) or when someone records an explicit "resolve" with a comment saying why
(the label in force stays). Nothing is deleted: the history keeps every decision and the
Review log marks where a dispute opened and how it closed.

Sign-off rules (`[signoff]` in sesame.toml, `SignoffOptions`) are enforced in one place,
`sign_off`, which the review screen calls and any other path that signs off must call:
the share of flagged sentences (model label positive or negative, as `explain.mode =
"flagged"` selects them) that need a decision, no open disputes, and the four-eyes rule.
A sentence decision after a sign-off supersedes it when `resign_after_decisions` is set;
the earlier sign-off stays in the log, shown as superseded.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

from app.config import SignoffOptions
from app.records import Label, ReviewAction, ReviewKind, Score
from app.store import ResultStore, StoreError

Role = Literal["preparer", "reviewer"]
ROLES: tuple[Role, ...] = ("preparer", "reviewer")
DECISIONS: frozenset[str] = frozenset({"agree", "override"})
"""The actions that decide a sentence's label (a comment does not)."""


class SignoffRefused(StoreError):
    """A sign-off broke a rule and was not recorded; the message says which and what to do."""

    code = "signoff_refused"


@dataclass(frozen=True)
class Dispute:
    """A sentence whose reviewers disagree (or did): their latest labels, and how it closed."""

    sentence_index: int
    labels: dict[str, Label]
    """Each person's latest label when the dispute opened (or, while open, now)."""
    opened_by: int
    """Id of the decision that opened it."""
    resolved_by: int | None = None
    """Id of the decision (or "resolve") that closed it; None while open."""

    @property
    def open(self) -> bool:
        """Still disputed."""
        return self.resolved_by is None

    def describe(self) -> str:
        """ "alice: negative, bob: positive"."""
        return ", ".join(f"{who}: {label}" for who, label in sorted(self.labels.items()))


def _ordered(reviews: Sequence[ReviewAction]) -> list[ReviewAction]:
    return sorted(reviews, key=lambda r: r.id)


def disputes(reviews: Sequence[ReviewAction]) -> list[Dispute]:
    """Every dispute of a result, open or resolved, in the order they opened."""
    latest: dict[int, dict[str, Label]] = {}
    current: dict[int, Dispute] = {}
    out: list[Dispute] = []
    for r in _ordered(reviews):
        if r.sentence_index is None:
            continue
        index = r.sentence_index
        if r.action == "resolve":
            if index in current:
                out.append(_close(current.pop(index), r.id))
            latest[index] = {}  # a fresh start: later decisions are weighed among themselves
            continue
        if r.action not in DECISIONS or r.label is None:
            continue
        labels = latest.setdefault(index, {})
        labels[r.reviewer] = r.label
        split = len(set(labels.values())) > 1
        if split and index not in current:
            current[index] = Dispute(index, dict(labels), opened_by=r.id)
        elif split:
            current[index] = Dispute(index, dict(labels), opened_by=current[index].opened_by)
        elif index in current:
            out.append(_close(current.pop(index), r.id))
    out.extend(current.values())
    return sorted(out, key=lambda d: d.opened_by)


def _close(dispute: Dispute, by: int) -> Dispute:
    return Dispute(dispute.sentence_index, dispute.labels, dispute.opened_by, resolved_by=by)


def open_disputes(reviews: Sequence[ReviewAction]) -> dict[int, Dispute]:
    """The disputes still open, by sentence index."""
    return {d.sentence_index: d for d in disputes(reviews) if d.open}


def dispute_marks(reviews: Sequence[ReviewAction]) -> dict[int, str]:
    """What each review action did to a dispute, by action id: "opens dispute (…)" or
    "resolves dispute"; actions that changed nothing are absent (the Review log's column)."""
    marks: dict[int, str] = {}
    for d in disputes(reviews):
        marks[d.opened_by] = f"opens dispute ({d.describe()})"
        if d.resolved_by is not None:
            marks[d.resolved_by] = "resolves dispute"
    return marks


def flagged_indices(scores: Sequence[Score]) -> list[int]:
    """Sentences the model flags (positive or negative): those that need a decision, the same
    as the evidence that `explain.mode = "flagged"` computes."""
    return sorted(s.sentence_index for s in scores if s.label != "neutral")


# ---------------------------------------------------------------------------------------------
# sign-off


def role_of(action: str) -> Role | None:
    """The role a sign-off action signs for (exceptions included); None for other actions."""
    for role in ROLES:
        if action in (f"signoff_{role}", f"signoff_{role}_exception"):
            return role
    return None


@dataclass(frozen=True)
class SignoffEntry:
    """One sign-off as the log shows it: in force, superseded, and whether it is an exception."""

    action: ReviewAction
    role: Role
    exception: bool
    superseded_by: int | None
    """Id of the later action that superseded it (a decision, or a newer sign-off)."""

    @property
    def state(self) -> str:
        """ "in force", "exception", "superseded" or "superseded exception"."""
        if self.superseded_by is not None:
            return "superseded exception" if self.exception else "superseded"
        return "exception" if self.exception else "in force"


def signoff_entries(reviews: Sequence[ReviewAction], options: SignoffOptions) -> list[SignoffEntry]:
    """Every sign-off of a result, oldest first, with its state under the firm's rules."""
    ordered = _ordered(reviews)
    out = []
    for i, r in enumerate(ordered):
        role = role_of(r.action)
        if role is None:
            continue
        superseded = next(
            (
                later.id
                for later in ordered[i + 1 :]
                if role_of(later.action) == role
                or (
                    options.resign_after_decisions
                    and later.action in (*DECISIONS, "resolve")
                    and later.sentence_index is not None
                )
            ),
            None,
        )
        out.append(SignoffEntry(r, role, r.action.endswith("_exception"), superseded))
    return out


def current_signoffs(
    reviews: Sequence[ReviewAction], options: SignoffOptions
) -> dict[Role, SignoffEntry | None]:
    """The sign-off in force for each role (None: not signed off, or superseded)."""
    current: dict[Role, SignoffEntry | None] = dict.fromkeys(ROLES)
    for entry in signoff_entries(reviews, options):
        if entry.superseded_by is None:
            current[entry.role] = entry
    return current


@dataclass(frozen=True)
class SignoffCheck:
    """Where a result stands against the sign-off rules."""

    flagged: int
    reviewed: int
    """Flagged sentences with a decision (agree / override)."""
    required: int
    """Flagged sentences that must have a decision (`min_reviewed_share` of them, rounded up)."""
    open_disputes: tuple[int, ...]
    breaches: tuple[str, ...]
    """Each rule broken, in words; empty when the result may be signed off."""

    @property
    def ok(self) -> bool:
        """No rule broken."""
        return not self.breaches

    def summary(self) -> str:
        """ "31 of 33 flagged sentences reviewed (33 required); 1 open dispute"."""
        n = len(self.open_disputes)
        return (
            f"{self.reviewed} of {self.flagged} flagged sentences reviewed "
            f"({self.required} required); {n} open dispute{'' if n == 1 else 's'}"
        )


def check_signoff(
    scores: Sequence[Score], reviews: Sequence[ReviewAction], options: SignoffOptions
) -> SignoffCheck:
    """The sign-off rules against a result's scores and review actions."""
    flagged = flagged_indices(scores)
    decided = {r.sentence_index for r in reviews if r.action in DECISIONS}
    reviewed = sum(1 for i in flagged if i in decided)
    # A tolerance so that 0.9 x 10 is 9, not 9.000000000000002 rounded up to 10.
    required = min(len(flagged), math.ceil(options.min_reviewed_share * len(flagged) - 1e-9))
    disputed = tuple(sorted(open_disputes(reviews)))
    breaches = []
    if reviewed < required:
        breaches.append(
            f"{len(flagged) - reviewed} of {len(flagged)} flagged sentences have no decision; "
            f"the firm's rule needs {required} ({options.min_reviewed_share:.0%}) reviewed"
        )
    if options.no_open_disputes and disputed:
        listed = ", ".join(f"#{i}" for i in disputed)
        breaches.append(
            f"{len(disputed)} open dispute{'' if len(disputed) == 1 else 's'} ({listed}); "
            "agree on a label or resolve each with a comment"
        )
    return SignoffCheck(len(flagged), reviewed, required, disputed, tuple(breaches))


def sign_off(
    store: ResultStore,
    result_id: int,
    role: Role,
    signer: str,
    *,
    options: SignoffOptions,
    expected_previous: int | None,
    comment: str | None = None,
) -> ReviewAction:
    """Record a sign-off if the firm's rules allow it: the one place sign-off rules hold.

    A sign-off that breaks a rule raises `SignoffRefused` with the reason (`on_breach =
    "refuse"`), or is recorded as an exception whose comment names the rules broken (`on_breach
    = "exception"`; a comment is then required). The other role's sign-off in force must be by
    someone else (four eyes). `expected_previous` is as for `ResultStore.add_review`: the check
    runs on the actions the store holds, and a conflict is raised if they are not the ones the
    signer saw.
    """
    reviews = store.reviews(result_id=result_id)
    other: Role = "reviewer" if role == "preparer" else "preparer"
    theirs = current_signoffs(reviews, options)[other]
    if theirs is not None and theirs.action.reviewer == signer:
        raise SignoffRefused(
            f"You signed this document off as {other}; the {role} sign-off must come from a "
            "different person."
        )
    scores = [score for _, score in store.sentences(result_id) if score is not None]
    check = check_signoff(scores, reviews, options)
    action: ReviewKind = "signoff_preparer" if role == "preparer" else "signoff_reviewer"
    comment = (comment or "").strip() or None
    if not check.ok:
        reasons = "; ".join(check.breaches)
        if options.on_breach == "refuse":
            raise SignoffRefused(f"Sign-off refused: {reasons}.")
        if comment is None:
            raise SignoffRefused(
                f"This sign-off breaks the firm's rules ({reasons}); it can be recorded only "
                "as an exception, with a comment saying why."
            )
        action = (
            "signoff_preparer_exception" if role == "preparer" else "signoff_reviewer_exception"
        )
        comment = f"Exception ({reasons}): {comment}"
    return store.add_review(
        result_id, action, signer, expected_previous=expected_previous, comment=comment
    )
