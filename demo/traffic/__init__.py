"""The staging users: a bounded, seeded Locust population playing FlowMastery's users.

Pure parts (day curve, behaviors, settings, summary) import no locust; only `users`,
`shape` and `runner` do, and only the `demo-traffic` process loads them (gevent).
"""
