"""The simulated users of bench/load.py, run by it in a process of their own (Locust patches the
standard library for gevent on import, which the portal's code must not run under).

    python bench/load_users.py CONFIG.json RESULTS.json

CONFIG (written by bench/load.py): the portal's address, the seconds to measure, the password,
the operators (user name, their account's facility and feedstock type known to Isometric), the
staff users, the rows built (for search terms). Every user signs in through the login form;
once all have, the statistics start afresh and run for the seconds asked. Prints `measuring`
and `measured` as it starts and stops, and writes the figures of that window to RESULTS.
"""

import html
import itertools
import json
import random
import re
import sys
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from http.cookiejar import Cookie, DefaultCookiePolicy
from typing import Any
from urllib.parse import urlencode
from urllib.request import Request

import gevent
from gevent.event import Event
from locust import FastHttpUser, constant, task
from locust.env import Environment
from locust.exception import StopUser
from locust.stats import RequestStats

CONFIG: dict[str, Any] = {}
CSRF_TOKEN = re.compile(r'name="csrfmiddlewaretoken" value="([^"]+)"')
BATCH_LINK = re.compile(r'href="(/batches/\d+/)"')
NEXT_LINK = re.compile(r'rel="next" href="([^"]+)"')
STATUSES = ("synced", "pending", "failed", "rejected")
SIGN_IN_TIMEOUT = 600  # seconds for every user to sign in (each password check takes ~0.3 s)

signed_in = Event()
sign_ins = itertools.count(1)


class BehindTheProxy(DefaultCookiePolicy):
    """The portal's cookies are Secure (DEBUG is off): the TLS proxy in front of it would carry
    them, so they are sent over this plain socket to the portal behind it."""

    def return_ok_secure(self, cookie: Cookie, request: Request) -> bool:
        return True


class PortalUser(FastHttpUser):
    """A user who signs in through the login form, as a browser behind the portal's TLS proxy
    would reach gunicorn, then waits for everyone else to have signed in."""

    abstract = True
    wait_time = constant(0)  # the next request as soon as the last is answered
    default_headers = {"X-Forwarded-Proto": "https"}
    usernames: list[str] = []

    def on_start(self) -> None:
        assert self.host
        self.client.cookiejar.set_policy(BehindTheProxy())
        self.origin = "https://" + self.host.split("://", 1)[1]
        self.username = self.usernames.pop()
        try:
            form = self.page("sign in: form", "/login/")
            credentials = {"username": self.username, "password": CONFIG["password"]}
            done = self.post("sign in", "/login/", form, credentials, expect="/")
        finally:
            if next(sign_ins) == Operator.fixed_count + Staff.fixed_count:
                signed_in.set()
        if not done:
            raise StopUser()
        self.steps_taken = random.randrange(len(self.round()))
        signed_in.wait()

    def round(self) -> list[Callable[[], None]]:
        """The user's steps, each a page or a few."""
        raise NotImplementedError

    @task
    def next_step(self) -> None:
        """The round's steps in turn, each user from a point of its own, so that they are not
        all on the same page at once."""
        steps = self.round()
        steps[self.steps_taken % len(steps)]()
        self.steps_taken += 1

    def page(self, name: str, url: str) -> str:
        """GET `url`: a failure unless 200 (a redirect to the login page included)."""
        with self.client.get(
            url, name=name, allow_redirects=False, catch_response=True
        ) as response:
            if response.status_code != 200:
                response.failure(f"{response.status_code} {response.headers.get('Location', '')}")
            return response.text

    def post(self, name: str, url: str, form: str, data: dict[str, Any], expect: str) -> str:
        """POST a form with the CSRF token of its page (`form`): a failure unless it redirects
        to an address starting with `expect`. Returns that address, or "" on a failure."""
        token = CSRF_TOKEN.search(form)
        data["csrfmiddlewaretoken"] = token.group(1) if token else ""
        with self.client.post(
            url,
            data=urlencode(data, doseq=True),
            name=name,
            headers={"Origin": self.origin, "Content-Type": "application/x-www-form-urlencoded"},
            allow_redirects=False,
            catch_response=True,
        ) as response:
            location = response.headers.get("Location", "")
            if response.status_code == 302 and location.startswith(expect):
                return location
            response.failure(f"{response.status_code} {location}")
            return ""

    def search_term(self) -> str:
        """Part of a built batch's reference: about ten batches of each account have it."""
        return f"{random.randrange(CONFIG['rows']):08d}"[:-2]


class Operator(PortalUser):
    def on_start(self) -> None:
        super().on_start()
        operator = CONFIG["operators"][self.username]
        self.facility, self.feedstock_type = operator["facility"], operator["feedstock_type"]

    def round(self) -> list[Callable[[], None]]:
        return [self.browse, self.search, self.status_filter, self.record, self.remote, self.home]

    def browse(self) -> None:
        """The list, its next page (the keyset cursor's link), and a batch on that page."""
        listed = self.page("list", "/batches/")
        if found := NEXT_LINK.search(listed):
            listed = self.page("list: next page", "/batches/" + html.unescape(found.group(1)))
        self.page("batch", random.choice(BATCH_LINK.findall(listed)))

    def search(self) -> None:
        self.page("list: search", f"/batches/?q={self.search_term()}")

    def status_filter(self) -> None:
        self.page("list: status", f"/batches/?sync_status={random.choice(STATUSES)}")

    def record(self) -> None:
        """A new batch: the form's address with its generated reference, the form, saved."""
        with self.client.get(
            "/batches/new/", name="record: new", allow_redirects=False, catch_response=True
        ) as response:
            form_url = response.headers.get("Location", "")
            if response.status_code != 302 or "reference=" not in form_url:
                response.failure(f"{response.status_code} {form_url}")
                return
        form = self.page("record: form", form_url)
        started = datetime.now(UTC) - timedelta(days=2)
        data = {
            "facility": self.facility,
            "feedstock_types": [self.feedstock_type],
            "supplier_reference_id": form_url.split("reference=", 1)[1],
            "display_name": "",
            "started_at": f"{started:%Y-%m-%dT%H:%M}",
            "ended_at": f"{started + timedelta(hours=8):%Y-%m-%dT%H:%M}",
            "mass_magnitude": "12.5",
            "mass_unit": "tonne",
            "mass_standard_deviation": "",
        }
        self.post("record: save", form_url, form, data, expect="/batches/")

    def remote(self) -> None:
        self.page("In Isometric", "/batches/isometric/")

    def home(self) -> None:
        self.page("dashboard", "/")


class Staff(PortalUser):
    """On the admin's batch changelist, as an operator goes through the list."""

    changelist = "/admin/batches/productionbatch/"

    def round(self) -> list[Callable[[], None]]:
        return [self.browse, self.search, self.status_filter]

    def browse(self) -> None:
        self.page("admin", self.changelist)
        self.page("admin: next page", f"{self.changelist}?p=2")

    def search(self) -> None:
        self.page("admin: search", f"{self.changelist}?q={self.search_term()}")

    def status_filter(self) -> None:
        status = random.choice(STATUSES)
        self.page("admin: status", f"{self.changelist}?sync_status__exact={status}")


def figures(stats: RequestStats) -> list[dict[str, Any]]:
    return [
        {
            "name": entry.name,
            "requests": entry.num_requests,
            "failures": entry.num_failures,
            "p50": entry.get_response_time_percentile(0.5),
            "p95": entry.get_response_time_percentile(0.95),
        }
        for entry in stats.entries.values()
    ]


def main() -> None:
    with open(sys.argv[1]) as config:
        CONFIG.update(json.load(config))
    Operator.usernames = list(CONFIG["operators"])
    Staff.usernames = list(CONFIG["staff"])
    Operator.fixed_count, Staff.fixed_count = len(Operator.usernames), len(Staff.usernames)
    users = Operator.fixed_count + Staff.fixed_count
    environment = Environment(user_classes=[Operator, Staff], host=CONFIG["host"])
    runner = environment.create_local_runner()
    started = time.monotonic()
    runner.start(users, spawn_rate=users)
    signed_in.wait(SIGN_IN_TIMEOUT)
    sign_in = {"seconds": time.monotonic() - started, "pages": figures(environment.stats)}
    environment.stats.reset_all()
    print("measuring", flush=True)
    measured_from = time.monotonic()
    gevent.sleep(CONFIG["duration"])
    results = {
        "sign_in": sign_in,
        "seconds": time.monotonic() - measured_from,
        "pages": figures(environment.stats),
        "errors": [error.to_dict() for error in environment.stats.errors.values()],
        # A user's step that raised (none should), from the start.
        "exceptions": [
            f"{exception['count']} x {exception['msg']}" for exception in runner.exceptions.values()
        ],
    }
    print("measured", flush=True)
    runner.quit()
    with open(sys.argv[2], "w") as out:
        json.dump(results, out)


if __name__ == "__main__":
    main()
