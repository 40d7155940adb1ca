"""The staging users: a bounded, seeded Locust population playing FlowMastery's users.

Pure parts (daycurve, behaviors, actions, identity, settings, summary, launch) import no
locust; only `users`, `shape` and `runner` do, and only the `demo-traffic` process loads
them (gevent). The mix is documented in demo/STAGING_USERS.md.
"""
