"""The person behind the current request, for audit entries written where no service is told who
acted (a role changed on Django's admin pages). Set by AuditActorMiddleware for each request."""

from contextvars import ContextVar

from django.contrib.auth.models import User

# The request's user as AuthenticationMiddleware left it: a lazy object, looked up only when an
# entry is written (most requests write none, and should not pay for the user's query).
_request_user: ContextVar[object | None] = ContextVar("audit_request_user", default=None)


def current_actor() -> User | None:
    user = _request_user.get()
    return user if user is not None and user.is_authenticated else None


class AuditActorMiddleware:
    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        token = _request_user.set(getattr(request, "user", None))
        try:
            return self.get_response(request)
        finally:
            _request_user.reset(token)
