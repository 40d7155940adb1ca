"""Stage 1, capture: recording real traffic into anonymized traces (tracereplay.capture).

Built in the capture issue: the mitmproxy addon, the anonymizer, importers, the leak scanner.
"""
