"""Presenting: what was measured and judged, for people and other tools.

`store` (the results database and the per-call records), `review` (reviewers' decisions imported
back, agreement per rule) and `report` (the static HTML report). They read records and findings,
never a rule's private details.
"""
