"""What the model command imports before its first row: faker renders payloads where a
model is used (synthesize, replay), so the modules that learn a model leave it unloaded
(~25 ms of every `tracereplay model`, in the process the behaviors' child forks from)."""

from __future__ import annotations

import json
import random
import subprocess
import sys

from tracereplay.models.payloads import infer_body

_IMPORTS = """
import json, sys
import tracereplay.cli_app, tracereplay.models.model
print(json.dumps([m for m in ("faker", "sklearn") if m in sys.modules]))
"""


def test_learning_a_model_loads_no_faker() -> None:
    loaded = subprocess.run(
        [sys.executable, "-c", _IMPORTS], capture_output=True, text=True, check=True
    ).stdout
    assert json.loads(loaded) == []


def test_rendering_still_draws_personal_values_from_faker() -> None:
    from faker import Faker

    fake = Faker()
    bodies = [json.dumps({"name": fake.name(), "email": fake.email()}).encode() for _ in range(5)]
    model = infer_body(bodies)
    assert model is not None
    rendered = json.loads(model.render(random.Random(1), Faker()))
    assert set(rendered) == {"name", "email"} and "@" in rendered["email"]
