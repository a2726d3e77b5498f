"""Audit recorded Chinese customer-service calls against service norms.

The package by layer, lowest first; a module imports only its own layer and those below
(`tests/test_layers.py` holds the order and fails on a cycle or an upward import):

- the foundation, here: `records` (the typed records that pass between stages), `frames`,
  `textnorm`, `phrases` (the one phrase matcher), `privacy`, `config` (typed, validated sections);
- `measure`: decoding, speech, ASR, timing, ringback and prosody; each produces a record;
- `judge`: the built-in checks, the text rulebook, meaning (intents), ASR confidence and scoring;
  it reads only the measured records and produces findings;
- `configload`: the full config (sections, the checks' parameters, the rulebook);
- `present`: the results database, reviewers' decisions and the HTML report; they read measures
  and findings, never a rule's private details;
- `run`: one call's pipeline, the batch over a folder, the workers and the Ray cluster;
- `cli`: the `audit` command, a thin layer over `run` and `present`.
"""
