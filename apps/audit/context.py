"""The person behind the current request, for audit entries written where no service is told who
acted (a role changed on Django's admin pages). Set by AuditActorMiddleware for each request."""

from contextvars import ContextVar

from django.contrib.auth.models import User

current_actor: ContextVar[User | None] = ContextVar("audit_current_actor", default=None)


class AuditActorMiddleware:
    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        user = getattr(request, "user", None)
        token = current_actor.set(user if user is not None and user.is_authenticated else None)
        try:
            return self.get_response(request)
        finally:
            current_actor.reset(token)
