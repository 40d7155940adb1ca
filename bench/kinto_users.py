"""Users of a Kinto server (a third-party JSON API: accounts, Basic auth, records CRUD,
pagination by an absolute `Next-Page` URL), for bench/kinto_trial.py.

The accounts come from the CSV named by $KINTO_TRIAL_ACCOUNTS (header `email,password`:
Kinto usernames and synthetic passwords that kinto_trial.py made with faker); two users
share each account. Each user creates its account (PUT /v1/accounts/NAME, idempotent) so
the capture sees it, then browses, follows `Next-Page`, creates, updates and deletes
records, and now and then sends a wrong password. 127.0.0.1 only, bounded by --run-time:
    KINTO_TRIAL_ACCOUNTS=accounts.csv locust -f bench/kinto_users.py --headless \\
        -u 12 -r 4 --run-time 90s --host http://127.0.0.1:PROXY
"""

from __future__ import annotations

import csv
import itertools
import os
import random
from pathlib import Path

from faker import Faker
from locust import HttpUser, between, task

RECORDS = "/v1/buckets/default/collections/tasks/records"
RECORD = RECORDS + "/{id}"
NEXT_PAGE = "records next page"  # the name kinto_trial.py counts next-page requests by


def _accounts() -> list[tuple[str, str]]:
    path = Path(os.environ["KINTO_TRIAL_ACCOUNTS"])
    with path.open(newline="", encoding="utf-8") as file:
        return [(row["email"], row["password"]) for row in csv.DictReader(file)]


ACCOUNTS = _accounts()
_counter = itertools.count()
_fake = Faker()
_fake.seed_instance(7)


class KintoUser(HttpUser):
    wait_time = between(0.5, 3.0)

    def on_start(self) -> None:
        n = next(_counter)
        self.auth = ACCOUNTS[n % len(ACCOUNTS)]
        account = self.auth[0]
        self.client.put(
            f"/v1/accounts/{account}",
            json={"data": {"password": self.auth[1]}},
            name="/v1/accounts/{id}",
            # The second user of an account finds it made: updating it needs its password.
            auth=self.auth if n >= len(ACCOUNTS) else None,
        )
        self.client.get("/v1/", auth=self.auth)
        self.client.put("/v1/buckets/default/collections/tasks", json={"data": {}}, auth=self.auth)
        self.mine: list[str] = []

    @task(2)
    def wrong_password(self) -> None:
        with self.client.get(
            RECORDS, auth=(self.auth[0], "wrong-password"), catch_response=True
        ) as answer:
            if answer.status_code == 401:
                answer.success()
            else:
                answer.failure(f"wrong password answered {answer.status_code}")

    @task(6)
    def create(self) -> None:
        record = {
            "title": _fake.sentence(nb_words=4),
            "done": False,
            "owner": _fake.name(),
            "priority": random.randint(1, 5),
        }
        answer = self.client.post(RECORDS, json={"data": record}, auth=self.auth)
        if answer.status_code == 201:
            self.mine.append(answer.json()["data"]["id"])

    @task(10)
    def browse(self) -> None:
        answer = self.client.get(
            f"{RECORDS}?_limit=5&_sort=-last_modified", auth=self.auth, name=RECORDS
        )
        next_page = answer.headers.get("Next-Page")
        if next_page and random.random() < 0.5:
            self.client.get(next_page, auth=self.auth, name=NEXT_PAGE)
        items = answer.json().get("data", []) if answer.status_code == 200 else []
        if items:
            rid = random.choice(items)["id"]
            self.client.get(f"{RECORDS}/{rid}", auth=self.auth, name=RECORD)

    @task(4)
    def update(self) -> None:
        if self.mine:
            rid = random.choice(self.mine)
            self.client.patch(
                f"{RECORDS}/{rid}", json={"data": {"done": True}}, auth=self.auth, name=RECORD
            )

    @task(3)
    def delete(self) -> None:
        if self.mine:
            rid = self.mine.pop(random.randrange(len(self.mine)))
            self.client.delete(f"{RECORDS}/{rid}", auth=self.auth, name=RECORD)
