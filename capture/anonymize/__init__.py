"""Anonymization at the source: detectors, keyed pseudonyms, the policy and the record builder."""
