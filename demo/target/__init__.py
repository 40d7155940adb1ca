"""The sandbox target: a FlowMastery-like API (FastAPI) over seeded in-memory data.

`tracereplay demo-target` = `serve(load_settings(config, flags))`; tests use `create_app`.
"""

from tracereplay.demo.target.app import create_app
from tracereplay.demo.target.server import serve
from tracereplay.demo.target.settings import TargetSettings, load_settings

__all__ = ["TargetSettings", "create_app", "load_settings", "serve"]
