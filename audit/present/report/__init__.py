"""The reviewer's report: static HTML in `OUT/report/` that opens from the file system, offline.

- `index.html`: the run's counts, fails by rule and by agent, and the worklist: every call worst
  first, filterable (verdict, rule, agent, reviewed or open, text search), paged in the browser,
  with the filters kept in the URL.
- `calls/<call>.html`: one call. Why its verdict; each finding with its points, its evidence (each
  item a button that plays it in the call's player) and the reviewer's decision (confirm /
  dismiss, a reason, a note, a name: kept in the browser's localStorage, exported from the index
  as a file `audit review import` reads); the transcript with matched words highlighted and time
  stamps that seek the same player; pictures of the call's timing and the agent's prosody; the
  previous and next flagged call.
- `audio/<call>.ogg`: a flagged call's recording as Ogg Opus at a speech bit rate
  (`[report] audio_verdicts`, `audio_kbps`); a passed call's page says it holds no audio.

Modules by concern: `build` (what to build, in which process, the index), `views` (what a page
says), `charts` (the SVG pictures), `audio` (the call's audio), `worklist` (the order), `pages`
(templates, stylesheet and scripts, shipped as package data in `templates/` and `static/`).

Safety: every string that comes from a record reaches the pages through Jinja2's autoescaping (the
index's rows as JSON the script renders as text), and each page's Content-Security-Policy runs only
the page's own script, so markup in a transcript is shown as text and could not run even if it
slipped through. Privacy: phone, ID and bank card numbers in the text keep only their last four
digits (`mask_pii`); the audio is compressed, not masked.
"""

from audit.present.report.build import ReportError, page_stem, write_report

__all__ = ["ReportError", "page_stem", "write_report"]
