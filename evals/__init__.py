"""Evaluations and benchmarks of streamdesk: they import `streamdesk`; `streamdesk` never imports them.

`streamdesk eval ...` and `streamdesk bench ...` reach them through the `streamdesk.cli` entry point (`evals.cli`).
"""
