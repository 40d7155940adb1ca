"""The compressed day as a Locust load shape: seats over time follow `day_curve`.

Imports locust. Locust's shape worker calls `tick` once a second and re-targets the
runner whenever the answer changes; `None` ends the run (stopping the remaining seats).
`StableMixDispatcher` keeps the seat mix a function of the seat count (see its doc).
"""

from __future__ import annotations

from collections.abc import Iterator

from locust import LoadTestShape, User
from locust.dispatch import UsersDispatcher
from locust.runners import WorkerNode

from tracereplay.demo.traffic.daycurve import users_at


class CompressedDayShape(LoadTestShape):
    """`duration_s` of wall time is one whole day; at most `peak_users` seats."""

    def __init__(self, duration_s: float, peak_users: int) -> None:
        super().__init__()  # type: ignore[no-untyped-call]  # locust: untyped
        self.duration_s = duration_s
        self.peak_users = peak_users

    def tick(self) -> tuple[int, float] | None:
        run_time_s: float = self.get_run_time()  # type: ignore[no-untyped-call]  # untyped
        if run_time_s >= self.duration_s:
            return None
        # Spawn rate = peak: every change is applied in one dispatch step, within the second.
        return users_at(run_time_s, self.duration_s, self.peak_users), float(self.peak_users)


class StableMixDispatcher(UsersDispatcher):
    """Locust's dispatcher, except that a seat class removed is the first one re-added.

    Locust removes the users it added last but adds new ones by continuing its weighted
    sequence, so a dip and a rise can swap a class. With graceful stops a stopping seat
    still counts for its class until its session ends, so a swap spawns one class while
    another drains and the user count overshoots the target (and --users). Re-adding what
    was removed keeps the mix the first n entries of the weighted sequence for n seats,
    so the live count never exceeds the largest target of the last grace period.
    (Relies on UsersDispatcher internals of the pinned Locust; local runs only.)
    """

    def __init__(self, worker_nodes: list[WorkerNode], user_classes: list[type[User]]) -> None:
        super().__init__(worker_nodes, user_classes)
        self._removed: list[str] = []
        self._user_generator = self._re_adding(self._user_generator)

    def _re_adding(self, fresh: Iterator[str | None]) -> Iterator[str | None]:
        while True:
            yield self._removed.pop() if self._removed else next(fresh)

    def _remove_users_from_workers(self) -> dict[str, dict[str, int]]:
        before = list(self._active_users)
        users_on_workers = super()._remove_users_from_workers()
        popped = before[len(self._active_users) :]  # in the order they were added
        self._removed.extend(name for _worker, name in reversed(popped))
        return users_on_workers
