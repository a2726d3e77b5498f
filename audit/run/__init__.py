"""Running: one call through the stages (`pipeline`), a job in a worker (`work`), a folder of
recordings as a batch that survives bad input and restarts (`batch`), and the same on a Ray cluster
(`cluster`).
"""
