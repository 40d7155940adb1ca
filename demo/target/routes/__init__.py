"""The target's routers, one module per area of the API (auth, clients, metrics, ...).

Each module has `add_routes(api, state)`, adding its routes (full paths) to the app router.
"""
