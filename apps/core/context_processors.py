from django.http import HttpRequest

from apps.core.permissions import POLICY, Action, user_role


def role(request: HttpRequest) -> dict:
    """Expose the user's role and allowed actions to templates (`{% if perms_can.launch_job %}`)."""
    user_role_value = user_role(request.user)
    allowed = {action.value: user_role_value in roles for action, roles in POLICY.items()}
    return {"user_role": user_role_value, "perms_can": allowed, "Action": Action}
