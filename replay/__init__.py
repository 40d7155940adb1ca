"""Stage 3, replay: open-loop Locust replay of traces and models (tracereplay.replay).

Built in the replay issue. Only this package (and processes it starts) may import locust.
"""
