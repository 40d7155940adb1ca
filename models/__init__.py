"""Stage 2, model: characterizing a trace and synthesizing sessions (tracereplay.models).

Built in the model issue: templates, sessions, behaviors, arrivals, payloads, correlations.
"""
