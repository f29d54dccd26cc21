"""Page text -> sentences, tuned for financial reports (spaCy, no model download).

The pipeline is spaCy's blank English tokenizer plus one rule-based component,
`financial_sentencizer`, that knows report prose: abbreviations (Inc., U.S., e.g., No. 5,
Jan. 31, Note 3.) do not end a sentence unless a clear sentence starter follows ("... in the
U.S. We ..."), and amounts (EUR 1.5 million, $2.3 billion, 3.2%, (1,234.5), 1.5x) never split
because the tokenizer keeps them whole.

Before spaCy sees any text, each page is cut into units: headings and list items are units of
their own (their `Sentence.kind`), paragraphs are split into sentences. Layout blocks from ingest
are trusted when present; inside text blocks, and on pages without blocks, line heuristics find
headings (short title-case lines after a finished sentence), list items (lines starting with a
bullet, a dash, "(a)" or "1.") and table rows (mostly numbers). After the joins, `kinds` marks
the units that are no sentences: table rows (label columns, captions, column headers) and page
furniture (page labels, running footers); they keep their place, and `records.TONE_KINDS`
keeps them out of the tone.

What holds for every `Sentence` s of page p, with `norm(x) == " ".join(x.split())`:

* `s.text == norm(p.text[s.start:s.end])` when `s.end_page_no is None`;
* a sentence that runs across a page break (p's last paragraph stops mid-sentence and the next
  page opens with its continuation) is one Sentence on p: then `s.end_page_no == q.page_no ==
  p.page_no + 1` and `s.text == norm(p.text[s.start:s.end] + " " + q.text[:s.end_page_end])`;
* the span starts and ends on a non-space character; list markers (bullet, dash, "(a)", "1.")
  stay outside it;
* `s.boxes` holds one box per visual line the sentence touches (lines of `Page.lines`), clipped
  to the covered characters proportionally to their position in the line's character span
  (glyph widths are not known here, so the clip is exact only for even-width text); each box's
  `page_no` is the page it lies on. Pages without lines get the boxes of the blocks the sentence
  touches (unclipped), or none.
* `s.index` is dense and 0-based over the pages passed, in reading order.

Modules, lowest first; each imports only those above it (no cycles):

| module        | what it holds                                                                 |
|---------------|-------------------------------------------------------------------------------|
| `sentencizer` | spaCy tokenizer + `financial_sentencizer` rules, abbreviation lists, make_nlp |
| `segment`     | page text -> units (headings, list items, table rows, paragraphs), span tools |
| `sections`    | section taxonomy: `classify_section`, `is_section`, the heading patterns      |
| `kinds`       | units that are no sentences: table rows, page furniture, all-caps headings    |
| `assemble`    | `split_sentences`: block and page-break joins, long splits, boxes, records    |
"""

from app.sentences.assemble import split_sentences
from app.sentences.sections import classify_section
from app.sentences.sentencizer import COMPONENT, make_nlp

__all__ = ["COMPONENT", "classify_section", "make_nlp", "split_sentences"]
