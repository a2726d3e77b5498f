"""Judging: the measured records of one call in, findings and a verdict out.

`checks` (the built-in norms, one function each), `rules` (the text rulebook of
`configs/rulebook.toml`), `intent` (utterance meanings the rules ask for), `confidence` (findings
resting on words the ASR doubted go to review) and `scoring` (findings to a score and a verdict).
"""
