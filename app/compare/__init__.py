"""This year against last year: one client's two reports compared section by section.

| module | what it does |
|---|---|
| `text` | normal form of a sentence (figures, dates, case, punctuation aside), word diffs |
| `align` | sections aligned between the years: by section type, then by heading |
| `match` | sentences paired: unchanged, edited; the rest new or removed |
| `tone` | tone index per section with bootstrap intervals; the shift's paired interval |
| `comparison` | the stage: two `DocumentResult`s in, a `Comparison` out |
| `findings` | what an auditor reads first: new and removed negatives, flipped labels |
| `rescore` | like for like: a result rescored with the current model |
| `export`, `workpaper` | the comparison as JSON and as an Excel workpaper |
| `service` | inputs (files, stored documents, periods), rescoring, outputs, the store |
"""

from app.compare.comparison import compare_results, like_for_like

__all__ = ["compare_results", "like_for_like"]
