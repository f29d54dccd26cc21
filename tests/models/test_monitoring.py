"""Drift monitoring: profiles, tests, reports, agreement, and the `sesame monitor` commands."""

from __future__ import annotations

import json
import random
from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np
import pytest

from models.monitoring import (
    ArraySample,
    DriftThresholds,
    Feedback,
    Profile,
    agreement,
    build_profile,
    categorical_test,
    compare,
    continuous_test,
    describe_texts,
    domain_classifier_test,
    drift_verdict,
    feedback_digest,
    feedback_examples,
    load_profile,
    mean_pooled_embedder,
    reports_headline,
    run_drift_line,
    run_report_dir,
    save_profile,
    state_counts,
    verdict_line,
    verdict_text,
    write_report,
)
from models.monitoring.agreement import latest_feedback
from models.monitoring.report import report_html

# ---------------------------------------------------------------------------------------------
# Generated text: report-like sentences and tweet-like posts

SUBJECTS = [
    "Revenue",
    "Net income",
    "Operating profit",
    "The Group's gross margin",
    "Free cash",
    "Adjusted EBITDA",
    "Comparable sales",
    "Total equity",
    "The order book",
    "Net debt",
    "Operating expenses",
    "Research and development spending",
]
VERBS = ["increased", "decreased", "remained stable", "improved", "declined", "grew"]
AMOUNTS = [
    "by 4.2%",
    "to EUR 1,234 million",
    "by USD 56 million",
    "to 12.5% of sales",
    "by 310 basis points",
    "compared with the prior year",
]
TAILS = [
    "mainly due to higher volumes in North America.",
    "reflecting the impairment of goodwill recognised in the fourth quarter.",
    "as a result of the restructuring programme announced in 2022.",
    "driven by favourable currency effects and pricing.",
    "in line with the outlook communicated at the beginning of the year.",
    "which the Board considers adequate for the Group's liquidity needs.",
]
TICKERS = ["$AAPL", "$TSLA", "$FB", "$AMZN", "$NFLX", "$SPY", "$GOOG"]
SLANG = [
    "to the moon",
    "lol",
    "buying more calls",
    "short squeeze incoming",
    "bagholders",
    "this is gonna rip",
    "dump it",
    "long setup",
    "MACD cross",
    "bullish af",
]


def report_sentences(n: int, seed: int = 0) -> list[str]:
    """Long, formal, number-bearing sentences like those of an annual report."""
    rng = random.Random(seed)
    return [
        f"{rng.choice(SUBJECTS)} {rng.choice(VERBS)} {rng.choice(AMOUNTS)} in "
        f"{rng.choice(['2021', '2022', '2023', 'the quarter', 'the first half'])}, "
        f"{rng.choice(TAILS)}"
        for _ in range(n)
    ]


def tweet_posts(n: int, seed: int = 0) -> list[str]:
    """Short microblog posts with tickers, slang and links."""
    rng = random.Random(seed)
    return [
        f"{rng.choice(TICKERS)} {rng.choice(SLANG)} {rng.choice(['!!', '', ':)', '...'])} "
        f"{rng.choice(['http://stks.co/' + str(rng.randint(100, 999)), '', '#stocks'])}".strip()
        for _ in range(n)
    ]


def probs_for(labels: list[int], seed: int = 0, peak: float = 0.8) -> np.ndarray:
    """Probabilities whose argmax follows `labels` (columns positive, negative, neutral)."""
    rng = np.random.default_rng(seed)
    out = rng.uniform(0.0, 1.0 - peak, size=(len(labels), 3))
    out[np.arange(len(labels)), labels] = rng.uniform(peak, 1.0, size=len(labels))
    return out / out.sum(axis=1, keepdims=True)


def english(texts):
    """A stand-in language detector: the tests are not about langdetect."""
    return ["en"] * len(texts)


@pytest.fixture(scope="module")
def tiny(tiny_model_dir: Path):
    """Tokenizer, model and embedder of the tiny real model."""
    import torch
    from transformers import AutoModelForSequenceClassification, AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(str(tiny_model_dir))
    model = AutoModelForSequenceClassification.from_pretrained(str(tiny_model_dir)).eval()
    # The tiny model's classes are negative, neutral, positive; sesame's columns are
    # positive, negative, neutral.
    order = [2, 0, 1]

    def proba(texts: list[str]) -> np.ndarray:
        with torch.inference_mode():
            enc = tokenizer(texts, padding=True, truncation=True, return_tensors="pt")
            return torch.softmax(model(**enc).logits, -1).numpy()[:, order]

    return tokenizer, proba, mean_pooled_embedder(tokenizer, model)


def profile_of(texts, tiny, seed=0, **kwargs) -> Profile:
    tokenizer, proba, embed = tiny
    return build_profile(
        texts,
        proba(texts),
        tokenizer=tokenizer,
        embed=embed,
        languages=english,
        seed=seed,
        **kwargs,
    )


# ---------------------------------------------------------------------------------------------
# Descriptors and profiles


def test_descriptors_count_words_numbers_and_split_words(tiny):
    tokenizer, _, _ = tiny
    d = describe_texts(["Revenue rose 5% to 1,200", "the the the", ""], tokenizer)
    assert d[0, 0] == 5 and d[1, 0] == 3 and d[2, 0] == 0
    assert d[0, 2] == pytest.approx(2 / 5)  # "5%" and "1,200"
    assert d[1, 1] == 0.0  # "the" is one word piece
    jargon = describe_texts(["Xylophonisation hyperquantitative zzyzx"], tokenizer)
    assert jargon[0, 1] == 1.0


def test_descriptors_without_tokenizer_leave_split_share_unknown():
    d = describe_texts(["Revenue rose"], None)
    assert np.isnan(d[0, 1])


def test_profile_round_trips_through_json(tiny, tmp_path):
    texts = report_sentences(80)
    prof = profile_of(texts, tiny, source="reference <test>")
    path = save_profile(prof, tmp_path / "p.json")
    back = load_profile(path)
    assert back.n_sentences == 80 and back.source == "reference <test>"
    assert sum(back.label_counts.values()) == 80
    assert back.embeddings is not None
    assert np.allclose(back.embeddings.array(), prof.embeddings.array())
    assert "Revenue" not in path.read_text()  # profiles carry numbers, never the text


def test_profile_samples_are_capped():
    texts = report_sentences(300)
    prof = build_profile(
        texts,
        probs_for([2] * 300),
        languages=english,
        sample_size=100,
        embed=lambda xs: np.ones((len(xs), 4)),
        embed_size=20,
    )
    assert prof.n_sentences == 300 and prof.n_sample == 100
    assert prof.embeddings.shape == (20, 4)
    assert prof.label_counts["neutral"] == 300


def test_profile_refuses_probabilities_of_the_wrong_shape():
    with pytest.raises(ValueError, match="probabilities"):
        build_profile(["a", "b"], np.ones((3, 3)) / 3, languages=english)


def test_array_sample_packs_float16():
    a = np.arange(12, dtype=np.float32).reshape(3, 4) / 7
    assert np.allclose(ArraySample.of(a).array(), a, atol=1e-3)


def test_languages_are_detected_repeatably():
    from models.monitoring import detect_languages

    texts = [
        "The company reported a strong increase in revenue for the year.",
        "Het bedrijf rapporteerde een sterke stijging van de omzet dit jaar.",
        "12345",
    ]
    first = detect_languages(texts)
    assert first[:2] == ["en", "nl"] and first[2] == "unknown"
    assert detect_languages(texts) == first


# ---------------------------------------------------------------------------------------------
# Drift tests


def test_tweets_against_report_sentences_are_drift(tiny):
    ref = profile_of(report_sentences(300, seed=1), tiny, seed=1)
    cur = profile_of(tweet_posts(150, seed=2), tiny, seed=2)
    report = compare(ref, cur)
    assert report.drifted
    drifted = {t.name for t in report.drifted_tests()}
    assert {"domain_classifier", "n_words"} <= drifted
    domain = next(t for t in report.tests if t.name == "domain_classifier")
    assert domain.effect > 0.95


def test_two_halves_of_the_same_sentences_are_not_drift(tiny):
    texts = report_sentences(600, seed=3)
    ref = profile_of(texts[:300], tiny, seed=1)
    cur = profile_of(texts[300:], tiny, seed=2)
    report = compare(ref, cur)
    assert not report.drifted, [t for t in report.tests if t.drifted]
    domain = next(t for t in report.tests if t.name == "domain_classifier")
    assert domain.effect < 0.7


def test_strong_label_mix_shift_is_drift_and_a_small_one_is_not():
    rng = np.random.default_rng(0)
    texts = report_sentences(1200, seed=4)
    ref_labels = rng.choice(3, size=600, p=[0.2, 0.1, 0.7]).tolist()
    ref = build_profile(texts[:600], probs_for(ref_labels, 1), languages=english)
    shifted = rng.choice(3, size=600, p=[0.2, 0.6, 0.2]).tolist()
    cur = build_profile(texts[600:], probs_for(shifted, 2), languages=english)
    report = compare(ref, cur)
    label = next(t for t in report.tests if t.name == "label_shares")
    assert label.drifted and report.drifted and label.effect > 0.5
    similar = rng.choice(3, size=600, p=[0.22, 0.12, 0.66]).tolist()
    cur2 = build_profile(texts[600:], probs_for(similar, 3), languages=english)
    label2 = next(t for t in compare(ref, cur2).tests if t.name == "label_shares")
    assert not label2.drifted and label2.effect < 0.2


def test_large_samples_need_a_large_effect_not_just_a_small_p_value():
    # 50,000 vs 50,000 sentences, shares off by 2 points: the chi-square p-value is tiny, the
    # PSI is not, and the decision follows the effect.
    test = categorical_test(
        "label_shares",
        {"positive": 10000, "negative": 5000, "neutral": 35000},
        {"positive": 11000, "negative": 5000, "neutral": 34000},
        psi_threshold=0.2,
        alpha=0.01,
    )
    assert test.p_value < 1e-10 and test.effect < 0.01 and not test.drifted


def test_small_samples_need_a_small_p_value_not_just_a_large_effect():
    test = categorical_test(
        "label_shares",
        {"positive": 2, "negative": 1, "neutral": 7},
        {"positive": 5, "negative": 3, "neutral": 2},
        psi_threshold=0.2,
        alpha=0.01,
    )
    assert test.effect > 0.2 and test.p_value > 0.01 and not test.drifted


def test_a_category_missing_on_one_side_keeps_psi_finite():
    test = categorical_test(
        "language", {"en": 500}, {"en": 200, "nl": 300}, psi_threshold=0.2, alpha=0.01
    )
    assert np.isfinite(test.effect) and test.drifted


def test_continuous_shift_is_measured_in_reference_spreads():
    rng = np.random.default_rng(0)
    ref = rng.normal(20, 5, 2000)
    same = continuous_test("n_words", ref, rng.normal(20, 5, 2000), threshold=0.5, alpha=0.01)
    moved = continuous_test("n_words", ref, rng.normal(8, 3, 500), threshold=0.5, alpha=0.01)
    assert not same.drifted and same.effect < 0.2
    assert moved.drifted and moved.effect == pytest.approx(12 / 5, rel=0.15)


def test_continuous_test_with_a_constant_reference_stays_defined():
    test = continuous_test("numeric_share", [0.0] * 100, [0.5] * 100, threshold=0.5, alpha=0.01)
    assert np.isfinite(test.effect) and test.drifted


def test_domain_classifier_separates_different_rows_only():
    rng = np.random.default_rng(0)
    a, b = rng.normal(0, 1, (300, 20)), rng.normal(0, 1, (300, 20))
    same = domain_classifier_test(a, b, threshold=0.75, alpha=0.01)
    moved = domain_classifier_test(a, b + 1.0, threshold=0.75, alpha=0.01)
    assert not same.drifted and same.effect < 0.65
    assert moved.drifted and moved.effect > 0.9 and moved.p_value < 1e-6


def test_a_run_too_small_to_test_is_not_called_drift():
    texts = report_sentences(200)
    ref = build_profile(texts, probs_for([2] * 200), languages=english)
    cur = build_profile(tweet_posts(5), probs_for([1] * 5), languages=english)
    report = compare(ref, cur, DriftThresholds(min_sentences=30), run_id="run-small")
    assert not report.drifted
    assert [t.status for t in report.tests] == ["skipped"]
    # its own state, in the same words everywhere: never "no drift", never counted as ok
    assert report.state == "not_tested"
    assert report.verdict() == "not tested (5 sentences, needs 30)"
    assert report.summary() == "run-small: drift not tested (5 sentences, needs 30)"
    assert "no drift" not in report.summary()
    tested = compare(ref, build_profile(texts[:100], probs_for([2] * 100), languages=english))
    assert tested.state == "ok" and tested.verdict() == "no drift"
    assert state_counts([report, tested]) == {"drift": 0, "ok": 1, "not_tested": 1}
    assert reports_headline([report, report, report]) == ("3 reports · 0 with drift · 3 not tested")
    assert "not tested (5 sentences, needs 30)" in report_html(report)


def test_a_report_whose_gating_tests_all_skipped_is_not_tested():
    ref = build_profile(report_sentences(200), probs_for([2] * 200), languages=english)
    cur = build_profile(report_sentences(40, seed=3), probs_for([2] * 40), languages=english)
    only_labels = DriftThresholds(gating=("label_shares",))
    report = compare(ref, cur.model_copy(update={"label_counts": {}}), only_labels)
    assert report.state == "not_tested"
    assert report.verdict() == "not tested (label_shares: no observations on one side)"


def test_verdict_words_are_the_same_for_each_state():
    assert verdict_text("drift", drifted=["label_shares", "language"]) == (
        "DRIFT (label_shares, language)"
    )
    assert verdict_text("not_tested", reason="26 sentences, needs 30") == (
        "not tested (26 sentences, needs 30)"
    )
    assert verdict_line("ok", run_id="r1", reference="evaluation set") == (
        "r1: no drift against evaluation set"
    )
    assert verdict_line("not_tested", run_id="r1", reason="26 sentences, needs 30") == (
        "r1: drift not tested (26 sentences, needs 30)"
    )


def test_non_gating_tests_are_shown_but_do_not_decide():
    rng = np.random.default_rng(0)
    texts = report_sentences(1000, seed=5)
    ref = build_profile(
        texts[:500], probs_for(rng.choice(3, 500, p=[0.2, 0.1, 0.7]).tolist()), languages=english
    )
    cur = build_profile(
        texts[500:], probs_for(rng.choice(3, 500, p=[0.1, 0.8, 0.1]).tolist()), languages=english
    )
    info_only = DriftThresholds(gating=("domain_classifier",))
    report = compare(ref, cur, info_only)
    label = next(t for t in report.tests if t.name == "label_shares")
    assert label.drifted and not label.gating and not report.drifted


def test_profiles_without_embeddings_fall_back_to_descriptors():
    ref = build_profile(report_sentences(300, 1), probs_for([2] * 300), languages=english)
    cur = build_profile(tweet_posts(200, 2), probs_for([2] * 200), languages=english)
    domain = next(t for t in compare(ref, cur).tests if t.name == "domain_classifier")
    assert domain.detail["features"] == 4 and domain.drifted


# ---------------------------------------------------------------------------------------------
# Reports


def _drift_report(run_id: str = "run-1"):
    ref = build_profile(
        report_sentences(300, 1),
        probs_for([2] * 300),
        languages=english,
        source="reference <b>v1</b>",
    )
    cur = build_profile(tweet_posts(200, 2), probs_for([1] * 200), languages=english)
    return compare(ref, cur, run_id=run_id), cur


def test_report_files_are_written_and_html_is_escaped(tmp_path):
    report, cur = _drift_report(run_id="<script>alert(1)</script>")
    paths = write_report(report, tmp_path / "r", current=cur)
    assert set(paths) == {"json", "html", "profile"}
    data = json.loads(paths["json"].read_text())
    assert data["drifted"] is True and data["run_id"] == "<script>alert(1)</script>"
    page = paths["html"].read_text()
    assert "<script>" not in page and "&lt;script&gt;" in page
    assert "&lt;b&gt;v1&lt;/b&gt;" in page and "DRIFT" in page


def test_run_report_dir_is_safe_for_odd_run_ids(tmp_path):
    path = run_report_dir(tmp_path, "../../etc/passwd")
    assert tmp_path in path.parents and ".." not in path.parts


# ---------------------------------------------------------------------------------------------
# Agreement and feedback


def _feedback(
    version: str, agree: int, disagree: int, start: datetime, key_prefix: str = ""
) -> list[Feedback]:
    rows = []
    for i in range(agree + disagree):
        rows.append(
            Feedback(
                sentence_key=f"{key_prefix}{version}:{i}",
                reviewer="alice",
                model_version=version,
                model_label="positive",
                reviewer_label="positive" if i < agree else "negative",
                reviewed_at=start + timedelta(hours=i),
                text=f"sentence {i}",
            )
        )
    return rows


def test_agreement_per_version_and_week_flags_the_low_one():
    monday = datetime(2024, 1, 1, 9, tzinfo=UTC)
    fb = _feedback("1", 45, 5, monday) + _feedback("2", 20, 20, monday + timedelta(days=7))
    rep = agreement(fb, threshold=0.8, min_reviews=20)
    rows = {(r.model_version, r.period): r for r in rep.rows}
    assert rows[("1", "2024-W01")].rate == pytest.approx(0.9)
    assert rows[("2", "2024-W02")].rate == pytest.approx(0.5)
    assert [(a.model_version, a.period) for a in rep.alerts] == [("2", "2024-W02"), ("2", "all")]
    low = rows[("2", "2024-W02")]
    assert low.ci_low < 0.5 < low.ci_high


def test_agreement_needs_enough_reviews_before_alarming():
    fb = _feedback("1", 1, 4, datetime(2024, 1, 1, tzinfo=UTC))
    rep = agreement(fb, threshold=0.8, min_reviews=20)
    assert rep.overall[0].rate == pytest.approx(0.2) and not rep.alerts


def test_agreement_counts_every_decision_of_every_reviewer():
    t0 = datetime(2024, 3, 1, tzinfo=UTC)
    first = Feedback(
        sentence_key="d:1",
        reviewer="alice",
        model_version="1",
        model_label="neutral",
        reviewer_label="negative",
        reviewed_at=t0,
    )
    # Alice changes her mind, then Bob agrees with the model: three decisions, two agree
    second = first.model_copy(
        update={"reviewer_label": "neutral", "reviewed_at": t0 + timedelta(hours=1)}
    )
    third = second.model_copy(update={"reviewer": "bob", "reviewed_at": t0 + timedelta(hours=2)})
    rep = agreement([third, second, first], min_reviews=1)
    assert (rep.overall[0].n, rep.overall[0].agreed) == (3, 2)
    # the training label is still the last word on the sentence
    assert [f.reviewer for f in latest_feedback([third, second, first])] == ["bob"]


def test_agreement_between_reviewers_pairs_each_ones_latest_label_on_a_sentence():
    t0 = datetime(2024, 3, 1, tzinfo=UTC)

    def decided(key: str, who: str, label: str, hour: int, version: str = "1") -> Feedback:
        return Feedback(
            sentence_key=key,
            reviewer=who,
            model_version=version,
            model_label="negative",
            reviewer_label=label,
            reviewed_at=t0 + timedelta(hours=hour),
        )

    fb = [
        # a dispute: the preparer overrides, the reviewer overrides back
        decided("d:1", "alice", "neutral", 0),
        decided("d:1", "bob", "negative", 1),
        # Alice's first label is replaced by her second, which Bob shares
        decided("d:2", "alice", "positive", 2),
        decided("d:2", "alice", "negative", 3),
        decided("d:2", "bob", "negative", 4),
        # three people: three pairs, one of them agreeing
        decided("d:3", "alice", "neutral", 5),
        decided("d:3", "bob", "negative", 6),
        decided("d:3", "carol", "negative", 7),
        # one person only: not a pair
        decided("d:4", "alice", "negative", 8),
        # another model version is measured apart
        decided("d:5", "alice", "neutral", 9, version="2"),
        decided("d:5", "bob", "neutral", 10, version="2"),
    ]
    rep = agreement(fb, min_reviews=1)
    one, two = rep.between_reviewers
    assert (one.model_version, one.sentences, one.pairs, one.agreed) == ("1", 3, 5, 2)
    assert one.rate == pytest.approx(0.4) and one.ci_low < 0.4 < one.ci_high
    assert (two.model_version, two.sentences, two.pairs, two.agreed) == ("2", 1, 1, 1)
    assert two.kappa is None  # one label only: kappa undefined
    # the model-reviewer figure counts all 11 decisions
    assert sum(r.n for r in rep.overall) == 11
    assert agreement(fb[-3:-2], min_reviews=1).between_reviewers == ()


def test_feedback_examples_and_digest_do_not_depend_on_order():
    fb = _feedback("1", 3, 2, datetime(2024, 1, 1, tzinfo=UTC))
    rows = feedback_examples(fb)
    assert len(rows) == 5 and ("sentence 4", "negative") in rows
    assert feedback_digest(rows) == feedback_digest(feedback_examples(list(reversed(fb))))
    assert feedback_digest(rows) != feedback_digest(rows[:-1])


# ---------------------------------------------------------------------------------------------
# Runs in the results store and the `sesame monitor` commands


@pytest.fixture(scope="module")
def model_with_reference(tiny_model_dir: Path, tmp_path_factory: pytest.TempPathFactory):
    """A copy of the tiny model with its reference profile (report-like sentences) saved."""
    import shutil

    from app.config import ScoringOptions
    from models.monitoring import REFERENCE_FILE, write_reference
    from models.scoring import SentimentScorer

    model_dir = tmp_path_factory.mktemp("model") / "tiny"
    shutil.copytree(tiny_model_dir, model_dir)
    scorer = SentimentScorer.from_dir(model_dir, ScoringOptions(), name="tiny")
    write_reference(model_dir, report_sentences(300, seed=11), scorer, source="report-like")
    assert (model_dir / REFERENCE_FILE).is_file()
    return model_dir, scorer


def store_run(
    texts: list[str], scorer, model_dir: Path, run_id: str, headings: tuple[str, ...] = ()
) -> str:
    """Save a hand-built analyzed document and its run in the test's results store."""
    import hashlib

    from app.config import load_settings
    from app.records import Document, DocumentResult, Sentence, Stamp
    from app.store import ResultStore

    doc_id = hashlib.sha256(run_id.encode()).hexdigest()
    sentences = [
        Sentence(doc_id=doc_id, index=i, page_no=1, start=0, end=len(t), text=t)
        for i, t in enumerate(texts)
    ]
    sentences += [
        Sentence(
            doc_id=doc_id,
            index=len(texts) + i,
            page_no=1,
            start=0,
            end=len(t),
            text=t,
            kind="heading",
        )
        for i, t in enumerate(headings)
    ]
    stamp = Stamp(
        model_name="tiny",
        model_version=None,
        model_digest=scorer.digest,
        code_version="test",
        run_id=run_id,
        created_at=datetime.now(UTC),
    )
    settings = {"scoring": {"model_dir": str(model_dir)}}
    result = DocumentResult(
        source=f"{run_id}.pdf",
        status="ok",
        stamp=stamp,
        settings=settings,
        document=Document(doc_id=doc_id, file_name=f"{run_id}.pdf", size_bytes=1, n_pages=1),
        sentences=tuple(sentences),
        scores=tuple(scorer.score(sentences)),
    )
    store = ResultStore.from_settings(load_settings())
    store.start_run("analyze", run_id=run_id, stamp=stamp, settings=settings)
    result_id = store.save_result(result, run_id=run_id)
    store.record_run_document(run_id, f"{run_id}.pdf", "ok", doc_id=doc_id, result_id=result_id)
    store.finish_run(run_id)
    return run_id


def invoke(*args: str):
    from typer.testing import CliRunner

    from app.cli import app

    return CliRunner().invoke(app, ["monitor", *args])


def test_monitor_report_exits_1_when_a_run_drifts(model_with_reference):
    from app.config import load_settings
    from app.store import ResultStore

    model_dir, scorer = model_with_reference
    run_id = store_run(tweet_posts(120, seed=5), scorer, model_dir, "run-tweets")
    result = invoke("report", run_id)
    assert result.exit_code == 1, result.output
    assert "DRIFT" in result.output and "domain_classifier" in result.output
    settings = load_settings()
    saved = run_report_dir(settings.data_dir, run_id)
    assert (saved / "report.json").is_file() and (saved / "report.html").is_file()
    stored = ResultStore.from_settings(settings).monitor_reports("drift")
    assert [r.run_id for r in stored] == [run_id] and stored[0].report["drifted"] is True


def test_monitor_report_exits_0_for_the_latest_run_like_the_reference(
    model_with_reference, tmp_path
):
    model_dir, scorer = model_with_reference
    store_run(tweet_posts(60, seed=6), scorer, model_dir, "run-1-older")
    store_run(report_sentences(200, seed=12), scorer, model_dir, "run-2-latest")
    result = invoke("report", "--out", str(tmp_path / "copy"))
    assert result.exit_code == 0, result.output
    assert "run-2-latest" in result.output and "no drift" in result.output
    assert json.loads((tmp_path / "copy" / "report.json").read_text())["drifted"] is False
    history = invoke("history", "--json")
    assert [r["run_id"] for r in json.loads(history.output)] == ["run-2-latest"]


def test_monitor_report_without_a_run_or_reference_exits_2(tiny_model_dir, model_with_reference):
    from app.config import ScoringOptions
    from models.scoring import SentimentScorer

    assert invoke("report").exit_code == 2
    assert invoke("report", "no-such-run").exit_code == 2
    bare = SentimentScorer.from_dir(tiny_model_dir, ScoringOptions(), name="tiny")
    store_run(report_sentences(50), bare, tiny_model_dir, "run-no-reference")
    result = invoke("report", "run-no-reference")
    assert result.exit_code == 2 and "no reference profile" in result.output


def test_a_small_run_is_not_tested_in_the_cli_history_and_the_run_verdict(
    model_with_reference, tiny_model_dir
):
    from app.config import ScoringOptions, load_settings
    from app.store import ResultStore
    from models.scoring import SentimentScorer

    model_dir, scorer = model_with_reference
    store_run(report_sentences(26, seed=4), scorer, model_dir, "run-26")
    result = invoke("report", "run-26")
    assert result.exit_code == 0, result.output
    assert "26 sentences against 300: not tested (26 sentences, needs 30)" in result.output
    assert "no drift" not in result.output
    history = invoke("history")
    assert "not tested (26 sentences, needs 30)" in history.output
    assert "1 report · 0 with drift · 1 not tested" in history.output
    (row,) = json.loads(invoke("history", "--json").output)
    assert (row["state"], row["drifted"]) == ("not_tested", False)

    settings = load_settings()
    store = ResultStore.from_settings(settings)
    verdict = drift_verdict(settings, "run-26", store, scorer)
    assert verdict.state == "not_tested" and not verdict.drifted
    assert verdict.line == "run-26: drift not tested (26 sentences, needs 30)"
    assert run_drift_line(store, "run-26") == verdict.line
    # a model without a reference profile: not tested, with why; nothing stored as a report
    bare = SentimentScorer.from_dir(tiny_model_dir, ScoringOptions(), name="tiny")
    store_run(report_sentences(50), bare, tiny_model_dir, "run-bare")
    missing = drift_verdict(settings, "run-bare", store, bare)
    assert missing.state == "not_tested" and missing.report is None
    assert missing.line.startswith("run-bare: drift not tested (")
    assert "no reference profile" in missing.line
    assert run_drift_line(store, "run-bare") is None  # its run summary holds no verdict
    assert run_drift_line(store, None) is None


def test_monitor_compare_exit_status_follows_the_verdict(tmp_path):
    ref = build_profile(report_sentences(300, 1), probs_for([2] * 300), languages=english)
    same = build_profile(report_sentences(300, 2), probs_for([2] * 300, 1), languages=english)
    tweets = build_profile(tweet_posts(200, 2), probs_for([1] * 200), languages=english)
    for name, prof in (("ref", ref), ("same", same), ("tweets", tweets)):
        save_profile(prof, tmp_path / f"{name}.json")
    assert invoke("compare", str(tmp_path / "ref.json"), str(tmp_path / "same.json")).exit_code == 0
    drift = invoke(
        "compare",
        str(tmp_path / "ref.json"),
        str(tmp_path / "tweets.json"),
        "--out",
        str(tmp_path / "r"),
    )
    assert drift.exit_code == 1 and (tmp_path / "r" / "report.html").is_file()
    assert invoke("compare", str(tmp_path / "ref.json"), str(tmp_path / "nope.json")).exit_code == 2


def test_monitor_agreement_alerts_on_reviewer_overrides(model_with_reference):
    from app.config import load_settings
    from app.store import ResultStore

    model_dir, scorer = model_with_reference
    store_run(report_sentences(10, seed=3), scorer, model_dir, "run-reviewed")
    store = ResultStore.from_settings(load_settings())
    (result,) = store.list_results(run_id="run-reviewed")
    assert invoke("agreement", "--min-reviews", "1").exit_code == 0  # nothing reviewed yet
    labels = {s.index: sc.label for s, sc in store.sentences(result.result_id)}
    for index in range(4):
        other = next(lab for lab in ("positive", "negative", "neutral") if lab != labels[index])
        store.add_review(
            result.result_id,
            "override",
            "alice",
            expected_previous=None,
            sentence_index=index,
            label=other,
        )
    store.add_review(result.result_id, "agree", "alice", expected_previous=None, sentence_index=5)
    agreement_rows = invoke("agreement", "--min-reviews", "5")
    assert agreement_rows.exit_code == 1, agreement_rows.output
    assert "20.0%" in agreement_rows.output  # 1 of 5 reviewed sentences kept the model's label
    assert invoke("agreement", "--min-reviews", "6").exit_code == 0
    # a second person on sentence 5 counts as a decision, and as a pair between reviewers
    store.add_review(
        result.result_id,
        "override",
        "bob",
        expected_previous=store.reviews(result_id=result.result_id)[-1].id,
        sentence_index=5,
        label=next(lab for lab in ("positive", "negative", "neutral") if lab != labels[5]),
        comment="reads otherwise",
    )
    both = invoke("agreement", "--min-reviews", "6")
    assert "16.7%" in both.output  # 1 of 6 decisions kept the model's label
    assert "0 of 1 pairs agree" in both.output and "on 1 sentence decided" in both.output


def test_run_figures_count_documents_pages_and_sentences(model_with_reference):
    from app.config import load_settings
    from app.store import ResultStore
    from models.monitoring import MonitorError, run_figures

    model_dir, scorer = model_with_reference
    store_run(report_sentences(12, seed=8), scorer, model_dir, "run-figures")
    store = ResultStore.from_settings(load_settings())
    figures = run_figures(store, "run-figures")
    assert (figures["documents"], figures["pages"], figures["sentences"]) == (1, 1, 12)
    assert figures["failed"] == 0 and figures["status"] == "ok"
    assert figures["elapsed_s"] is not None and figures["peak_rss_mb"] is None
    with pytest.raises(MonitorError, match="no run"):
        run_figures(store, "missing")


def test_run_sentences_leave_headings_out(model_with_reference):
    from app.config import load_settings
    from app.store import ResultStore
    from models.monitoring import run_sentences

    model_dir, scorer = model_with_reference
    store_run(
        report_sentences(7, seed=9),
        scorer,
        model_dir,
        "run-headings",
        headings=("Risk Factors", "Outlook"),
    )
    store = ResultStore.from_settings(load_settings())
    texts, probs = run_sentences(store, "run-headings")
    assert len(texts) == 7 and probs.shape == (7, 3) and "Outlook" not in texts
    assert np.allclose(probs.sum(axis=1), 1.0)
    everything, _ = run_sentences(store, "run-headings", kinds=("sentence", "heading"))
    assert len(everything) == 9


def test_reviewed_sentences_export_as_training_csv(model_with_reference, tmp_path):
    import csv

    from app.config import load_settings
    from app.store import ResultStore
    from models.monitoring import export_feedback

    model_dir, scorer = model_with_reference
    texts = report_sentences(6, seed=21)
    store_run(texts, scorer, model_dir, "run-feedback")
    store = ResultStore.from_settings(load_settings())
    (result,) = store.list_results(run_id="run-feedback")
    store.add_review(
        result.result_id,
        "override",
        "bob",
        expected_previous=None,
        sentence_index=2,
        label="negative",
    )
    store.add_review(result.result_id, "agree", "bob", expected_previous=None, sentence_index=4)
    path, n, digest = export_feedback(load_settings(), tmp_path / "feedback.csv")
    with path.open(encoding="utf-8") as f:
        rows = list(csv.DictReader(f))
    assert n == 2 and {r["text"] for r in rows} == {texts[2], texts[4]}
    assert next(r["label"] for r in rows if r["text"] == texts[2]) == "negative"
    again = export_feedback(load_settings(), tmp_path / "again.csv")
    assert again[2] == digest and again[0].read_bytes() == path.read_bytes()
    cli = invoke("feedback", str(tmp_path / "cli.csv"))
    assert cli.exit_code == 0, cli.output
    assert f"2 reviewed sentences -> {tmp_path / 'cli.csv'}" in cli.output
    assert (tmp_path / "cli.csv").read_bytes() == path.read_bytes()


def test_a_trusted_run_becomes_the_reference_and_takes_precedence(model_with_reference):
    model_dir, scorer = model_with_reference
    store_run(tweet_posts(150, seed=30), scorer, model_dir, "run-trusted")
    store_run(tweet_posts(150, seed=31), scorer, model_dir, "run-next")
    assert invoke("report", "run-next").exit_code == 1  # against the blessing-time reference
    made = invoke("reference", "--run", "run-trusted")
    assert made.exit_code == 0, made.output
    assert "run run-trusted" in made.output
    again = invoke("report", "run-next")
    assert again.exit_code == 0, again.output
    assert invoke("reference", "--run", "missing").exit_code == 2
