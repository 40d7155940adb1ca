"""Stage 4, compare: how close a replayed or synthetic trace is to the real one
(tracereplay.compare): measures, fidelity verdicts, SLOs, the printed table and the report.
"""
