"""Disputes between reviewers and the firm's sign-off rules, on a real SQLite store."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from compare_support import make_result

from app.config import SignoffOptions, load_settings
from app.records import DocumentResult
from app.reviewing import (
    SignoffRefused,
    check_signoff,
    current_signoffs,
    dispute_marks,
    disputes,
    open_disputes,
    sign_off,
    signoff_entries,
)
from app.store import ResultStore, StoreError

DOC = "7" * 64


def report() -> DocumentResult:
    """A heading (neutral, index 0), two flagged sentences (1 positive, 2 negative), a neutral
    one (3)."""
    return make_result(
        DOC,
        [
            (
                "Results",
                None,
                [
                    ("Revenue grew by a record 12% in the year.", "positive"),
                    ("The impairment of goodwill cut profit by half.", "negative"),
                    ("The company is based in Ohio.", "neutral"),
                ],
            )
        ],
    )


@pytest.fixture
def store(tmp_path) -> Iterator[ResultStore]:
    s = ResultStore(f"sqlite:///{tmp_path / 'results.db'}")
    s.create_schema()
    yield s
    s.dispose()


@pytest.fixture
def result_id(store: ResultStore) -> int:
    return store.save_result(report())


def latest(store: ResultStore, result_id: int, index: int | None = None) -> int | None:
    actions = store.reviews(result_id=result_id)
    if index is not None:
        actions = [a for a in actions if a.sentence_index == index]
    return max((a.id for a in actions), default=None)


def decide(store: ResultStore, rid: int, who: str, index: int, label: str | None = None) -> None:
    prev = latest(store, rid, index)
    if label is None:
        store.add_review(rid, "agree", who, sentence_index=index, expected_previous=prev)
    else:
        store.add_review(
            rid,
            "override",
            who,
            sentence_index=index,
            label=label,  # type: ignore[arg-type]
            comment=f"{who} reads it as {label}",
            expected_previous=prev,
        )


def test_an_override_reverted_by_another_user_is_disputed(store: ResultStore, result_id: int):
    decide(store, result_id, "alice", 1, "neutral")
    decide(store, result_id, "bob", 1, "positive")  # back to the model's label

    found = open_disputes(store.reviews(result_id=result_id))
    assert list(found) == [1]
    assert found[1].labels == {"alice": "neutral", "bob": "positive"}


def test_one_person_changing_their_mind_is_no_dispute(store: ResultStore, result_id: int):
    decide(store, result_id, "alice", 1, "neutral")
    decide(store, result_id, "alice", 1, "positive")
    decide(store, result_id, "bob", 1)  # bob agrees with positive

    assert disputes(store.reviews(result_id=result_id)) == []


def test_a_dispute_closes_when_the_other_party_accepts(store: ResultStore, result_id: int):
    decide(store, result_id, "alice", 2, "neutral")
    decide(store, result_id, "bob", 2, "negative")
    decide(store, result_id, "alice", 2)  # alice agrees with bob's negative

    reviews = store.reviews(result_id=result_id)
    [dispute] = disputes(reviews)
    assert not dispute.open and dispute.resolved_by == reviews[-1].id
    assert open_disputes(reviews) == {}
    marks = dispute_marks(reviews)
    assert marks[reviews[1].id].startswith("opens dispute (alice: neutral, bob: negative)")
    assert marks[reviews[2].id] == "resolves dispute"
    assert len(reviews) == 3  # history kept


def test_an_explicit_resolve_needs_a_comment_and_keeps_the_label(
    store: ResultStore, result_id: int
):
    decide(store, result_id, "alice", 2, "neutral")
    decide(store, result_id, "bob", 2, "positive")
    prev = latest(store, result_id, 2)
    with pytest.raises(StoreError, match="comment"):
        store.add_review(result_id, "resolve", "carol", sentence_index=2, expected_previous=prev)
    store.add_review(
        result_id,
        "resolve",
        "carol",
        sentence_index=2,
        comment="Partner view: positive stands.",
        expected_previous=prev,
    )

    assert open_disputes(store.reviews(result_id=result_id)) == {}
    assert store.current_labels(result_id)[2] == "positive"


def test_signoff_is_refused_with_unreviewed_flagged_sentences(store: ResultStore, result_id: int):
    options = SignoffOptions()
    decide(store, result_id, "alice", 1)

    with pytest.raises(SignoffRefused, match="1 of 2 flagged sentences have no decision"):
        sign_off(
            store,
            result_id,
            "preparer",
            "alice",
            options=options,
            expected_previous=latest(store, result_id),
        )
    assert not any(a.action.startswith("signoff") for a in store.reviews(result_id=result_id))

    decide(store, result_id, "alice", 2)
    done = sign_off(
        store,
        result_id,
        "preparer",
        "alice",
        options=options,
        expected_previous=latest(store, result_id),
    )
    assert done.action == "signoff_preparer"


def test_the_reviewed_share_is_the_firms_setting(store: ResultStore, result_id: int):
    decide(store, result_id, "alice", 1)
    scores = report().scores
    reviews = store.reviews(result_id=result_id)

    assert check_signoff(scores, reviews, SignoffOptions(min_reviewed_share=0.5)).ok
    strict = check_signoff(scores, reviews, SignoffOptions(min_reviewed_share=1.0))
    assert not strict.ok
    assert strict.summary() == ("1 of 2 flagged sentences reviewed (2 required); 0 open disputes")
    assert check_signoff(scores, [], SignoffOptions(min_reviewed_share=0.0)).ok


def test_signoff_is_refused_while_a_dispute_is_open(store: ResultStore, result_id: int):
    decide(store, result_id, "alice", 1)
    decide(store, result_id, "alice", 2, "neutral")
    decide(store, result_id, "bob", 2, "negative")
    scores = report().scores

    with pytest.raises(SignoffRefused, match=r"1 open dispute \(#2\)"):
        sign_off(
            store,
            result_id,
            "reviewer",
            "bob",
            options=SignoffOptions(),
            expected_previous=latest(store, result_id),
        )
    allowed = SignoffOptions(no_open_disputes=False)
    assert check_signoff(scores, store.reviews(result_id=result_id), allowed).ok


def test_an_exception_needs_a_comment_and_says_which_rule(store: ResultStore, result_id: int):
    options = SignoffOptions(on_breach="exception")
    with pytest.raises(SignoffRefused, match="only as an exception"):
        sign_off(store, result_id, "preparer", "alice", options=options, expected_previous=None)

    done = sign_off(
        store,
        result_id,
        "preparer",
        "alice",
        options=options,
        expected_previous=None,
        comment="Client deadline; review finishes Monday.",
    )
    assert done.action == "signoff_preparer_exception"
    assert done.comment is not None and "2 of 2 flagged sentences have no decision" in done.comment
    [entry] = signoff_entries(store.reviews(result_id=result_id), options)
    assert entry.state == "exception"


def test_a_later_decision_supersedes_the_signoff_without_deleting_it(
    store: ResultStore, result_id: int
):
    options = SignoffOptions()
    decide(store, result_id, "alice", 1)
    decide(store, result_id, "alice", 2)
    sign_off(
        store,
        result_id,
        "preparer",
        "alice",
        options=options,
        expected_previous=latest(store, result_id),
    )
    decide(store, result_id, "bob", 1)  # after the sign-off

    reviews = store.reviews(result_id=result_id)
    [entry] = signoff_entries(reviews, options)
    assert entry.state == "superseded" and entry.superseded_by == reviews[-1].id
    assert current_signoffs(reviews, options)["preparer"] is None
    kept = signoff_entries(reviews, SignoffOptions(resign_after_decisions=False))
    assert kept[0].state == "in force"


def test_four_eyes_holds_in_the_service(store: ResultStore, result_id: int):
    options = SignoffOptions(min_reviewed_share=0.0)
    sign_off(store, result_id, "preparer", "alice", options=options, expected_previous=None)
    with pytest.raises(SignoffRefused, match="different person"):
        sign_off(
            store,
            result_id,
            "reviewer",
            "alice",
            options=options,
            expected_previous=latest(store, result_id),
        )


def test_signoff_options_come_from_sesame_toml(tmp_path, monkeypatch):
    (tmp_path / "sesame.toml").write_text(
        '[signoff]\nmin_reviewed_share = 0.8\non_breach = "exception"\n'
    )
    monkeypatch.chdir(tmp_path)
    settings = load_settings()
    assert settings.signoff.min_reviewed_share == 0.8
    assert settings.signoff.on_breach == "exception"
    assert settings.signoff.no_open_disputes and settings.signoff.resign_after_decisions
