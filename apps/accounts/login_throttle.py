"""Failed-sign-in limits for the HTML login pages (ours and the admin's).

After `LOGIN_FAILURE_LIMIT` failed sign-ins for one username from one address, or
`LOGIN_FAILURE_LIMIT_PER_IP` from one address whatever the usernames, within
`LOGIN_FAILURE_WINDOW_SECONDS`, the next attempts get a 429 page until the window that began with
the first failure ends — even with the right password, which is then not checked. A successful
sign-in clears its (username, address) count, not the address's.

Why not a library: django-axes keeps attempts in database tables, adds an authentication backend
and middleware, and locks accounts; django-ratelimit counts every request rather than failures and
cannot be reset by a success. This is two cache counters in the shared cache (Redis in
production), which is all the rule needs. The client's address is the one DRF's throttles use
(REST_FRAMEWORK["NUM_PROXIES"]), so one setting says which proxies to trust for both.
"""

import functools
import hashlib
import math
import time
from dataclasses import dataclass

from django.conf import settings
from django.contrib.auth import get_user_model
from django.core.cache import cache
from django.shortcuts import render
from django.utils.cache import add_never_cache_headers
from rest_framework.throttling import BaseThrottle


def client_address(request) -> str:
    return BaseThrottle().get_ident(request) or "unknown"


def _key(kind: str, *parts: str) -> str:
    digest = hashlib.sha256("\x00".join(parts).encode()).hexdigest()[:32]
    return f"login-failures:{kind}:{digest}"


@dataclass(frozen=True)
class _Counter:
    """Failures in a fixed window that begins with the first one. The window's end is its own key
    (`add` sets it once): backends whose `incr` re-sets the timeout (the file cache) cannot
    stretch the window."""

    key: str
    limit: int

    @property
    def until_key(self) -> str:
        return self.key + ":until"

    def blocked_for(self, now: float) -> float:
        until = cache.get(self.until_key)
        if until is None or until <= now:
            return 0.0
        return until - now if cache.get(self.key, 0) >= self.limit else 0.0

    def add_failure(self, now: float, window: int) -> None:
        if cache.add(self.until_key, now + window, timeout=window):
            cache.set(self.key, 1, timeout=window)  # a new window
            return
        try:
            cache.incr(self.key)
        except ValueError:  # expired between the two calls
            cache.set(self.key, 1, timeout=window)

    def clear(self) -> None:
        cache.delete_many([self.key, self.until_key])


class LoginThrottle:
    def __init__(self, request):
        username = request.POST.get(get_user_model().USERNAME_FIELD, "")
        address = client_address(request)
        self.username = username
        self.per_user = _Counter(_key("user", username.casefold(), address), settings.LOGIN_FAILURE_LIMIT)
        self.per_address = _Counter(_key("ip", address), settings.LOGIN_FAILURE_LIMIT_PER_IP)

    def blocked_for(self) -> float:
        now = time.time()
        return max(self.per_user.blocked_for(now), self.per_address.blocked_for(now))

    def failed(self) -> None:
        now, window = time.time(), settings.LOGIN_FAILURE_WINDOW_SECONDS
        self.per_user.add_failure(now, window)
        self.per_address.add_failure(now, window)

    def succeeded(self) -> None:
        self.per_user.clear()


def throttled_response(request, seconds: float):
    minutes = max(1, math.ceil(seconds / 60))
    message = f"Too many failed sign-ins; try again in {minutes} minute{'s' if minutes != 1 else ''}."
    response = render(request, "registration/login_throttled.html", {"message": message}, status=429)
    response["Retry-After"] = str(math.ceil(seconds))
    add_never_cache_headers(response)
    return response


def login_throttled(view):
    """Wrap a login view: refuse POSTs while blocked, count the outcome of the others. A POST
    succeeded when it redirected with the posted user now signed in; anything else is a failure."""

    @functools.wraps(view)
    def wrapped(request, *args, **kwargs):
        if request.method != "POST":
            return view(request, *args, **kwargs)
        throttle = LoginThrottle(request)
        wait = throttle.blocked_for()
        if wait:
            return throttled_response(request, wait)
        response = view(request, *args, **kwargs)
        user = request.user
        signed_in = (
            response.status_code in (301, 302, 303)
            and user.is_authenticated
            and user.get_username().casefold() == throttle.username.casefold()
        )
        throttle.succeeded() if signed_in else throttle.failed()
        return response

    return wrapped
