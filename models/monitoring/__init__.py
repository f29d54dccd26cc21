"""Drift and quality monitoring: profiles, drift tests, reports, model-reviewer agreement.

A `Profile` summarises what a model saw and said on a set of sentences: predicted-label shares,
the confidence distribution, input descriptors (length in words, share of words the tokenizer
splits into several pieces, share of numeric tokens, language) and a capped sample of sentence
embeddings. One is saved with each model version at blessing time (the *reference*, on the
evaluation set); each analyze or batch run builds one for its sentences and `compare` tests it
against the reference:

| what                       | test (scipy / scikit-learn)     | decides on (effect size)     |
|----------------------------|---------------------------------|------------------------------|
| predicted-label shares     | chi-square (`chi2_contingency`) | PSI                          |
| language shares            | chi-square                      | PSI                          |
| confidence, length, split  | Kolmogorov-Smirnov (`ks_2samp`) | Wasserstein distance in      |
| and numeric shares         |                                 | reference standard deviations|
| the text itself            | domain classifier (logistic     | cross-validated ROC AUC      |
|                            | regression, reference vs        |                              |
|                            | current); Mann-Whitney on its   |                              |
|                            | out-of-fold scores              |                              |

Why effect sizes and not p-values: a batch has thousands of sentences, and with that many a
KS or chi-square p-value flags differences too small to matter (a 2-point shift in the neutral
share). A small run (one 4-page press release) has the opposite problem: noise alone moves the
effect size. So a test drifts only when the effect passes its threshold AND the p-value is
below `alpha`: large enough to matter, and unlikely to be noise. The thresholds are calibrated
in `benchmarks/bench_monitoring.py` (false alarms over repeated random halves of one corpus,
detection of tweets, headlines and label-mix shifts).

Profiles hold no sentence text: only numbers, so they may travel with a model version.

| module      | what it holds                                                                  |
|-------------|--------------------------------------------------------------------------------|
| `profile`   | `Profile`, `ArraySample`, the descriptors, languages, embedders,               |
|             | `build_profile`, `reference_profile`, save / load; `Model`, the record base    |
| `drift`     | `DriftThresholds`, `DriftTest`, `DriftReport`, the categorical, continuous and |
|             | domain-classifier tests, `compare`; `verdict_text` / `verdict_line`: the words |
|             | of every drift verdict (drift, no drift, not tested) on every surface          |
| `report`    | the HTML report, `write_report`, where report folders live                     |
| `agreement` | `Feedback`, `AgreementReport` (model and reviewer-reviewer), feedback rows    |
| `runs`      | what needs the store, the registry or a scorer: references of model versions,  |
|             | `monitor_run`, `drift_verdict`, `make_reference`, run figures, stored reports, |
|             | feedback from the store and its export                                         |

Import order, lower never importing higher: `profile` <- `drift` <- `report` <- `runs`, and
`profile` <- `agreement` <- `runs`. Only `runs` imports sesame beyond the floor (`app.store`,
`models.registry`, `models.evaluate`, `models.scoring`).

Process memory (`peak_rss_mb`) is not monitoring of the model: it lives in `app.system`.
"""

from models.monitoring.agreement import (
    AgreementReport,
    Feedback,
    ReviewerAgreementRow,
    agreement,
    feedback_digest,
    feedback_examples,
)
from models.monitoring.drift import (
    DriftReport,
    DriftState,
    DriftTest,
    DriftThresholds,
    categorical_test,
    compare,
    continuous_test,
    domain_classifier_test,
    reports_headline,
    state_counts,
    verdict_line,
    verdict_text,
)
from models.monitoring.profile import (
    REFERENCE_FILE,
    ArraySample,
    Profile,
    build_profile,
    describe_texts,
    detect_languages,
    load_profile,
    mean_pooled_embedder,
    reference_profile,
    save_profile,
)
from models.monitoring.report import (
    run_report_dir,
    write_report,
)
from models.monitoring.runs import (
    DriftVerdict,
    MonitorError,
    drift_verdict,
    export_feedback,
    feedback_from_store,
    make_reference,
    monitor_run,
    run_drift_line,
    run_figures,
    run_sentences,
    stored_reports,
    write_reference,
)

__all__ = [
    "AgreementReport",
    "ReviewerAgreementRow",
    "ArraySample",
    "DriftReport",
    "DriftState",
    "DriftTest",
    "DriftVerdict",
    "DriftThresholds",
    "Feedback",
    "MonitorError",
    "Profile",
    "REFERENCE_FILE",
    "agreement",
    "build_profile",
    "categorical_test",
    "compare",
    "continuous_test",
    "describe_texts",
    "detect_languages",
    "domain_classifier_test",
    "drift_verdict",
    "run_drift_line",
    "export_feedback",
    "feedback_digest",
    "feedback_examples",
    "feedback_from_store",
    "load_profile",
    "make_reference",
    "mean_pooled_embedder",
    "monitor_run",
    "reference_profile",
    "run_figures",
    "run_report_dir",
    "run_sentences",
    "save_profile",
    "reports_headline",
    "state_counts",
    "stored_reports",
    "verdict_line",
    "verdict_text",
    "write_reference",
    "write_report",
]
