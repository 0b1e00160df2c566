"""Label Studio accounts for the project's labelling members, made by the app.

Label Studio's open sign-up is off (LABEL_STUDIO_DISABLE_SIGNUP_WITHOUT_LINK=true). The app makes
each account with the admin token: it reads the organisation's invitation token through the API and
signs the account up with it, with an initial password it generates (open-source Label Studio sets
passwords nowhere else), then records which Label Studio user id belongs to which app user. Only
answers from accounts recorded here count (selectors).

An account that already exists in Label Studio for the e-mail is taken only if the app can log in
to it with the password it holds (an earlier attempt whose answer was lost, or the demo's password):
anyone could have signed up with a member's e-mail while sign-up was open.
"""

import logging
import secrets
from dataclasses import dataclass

from django.contrib.auth.models import User
from django.db import IntegrityError, transaction

from apps.labeling.browser import LabelStudioAccountExists, LabelStudioBrowser
from apps.labeling.client import LabelStudioClient, LabelStudioError, LabelStudioUnavailable
from apps.labeling.models import LabelStudioAccount
from apps.labeling.selectors import labelling_members
from apps.projects.models import Project

logger = logging.getLogger(__name__)


@dataclass
class AccountOutcome:
    user: User
    status: str  # created | adopted | existing | refused | failed
    detail: str
    email: str = ""
    password: str = ""  # the initial password: only when the app has just made the account with it


def labelstudio_account_ensure(
    *,
    user: User,
    password: str | None = None,
    created_by: User | None = None,
    client: LabelStudioClient | None = None,
) -> AccountOutcome:
    """The user's Label Studio account, made (or proven ours and taken) if the app has none recorded.

    `password`: the initial password to set (the demo passes its users' app passwords); otherwise
    one is generated and returned once in the outcome.
    """
    existing = LabelStudioAccount.objects.filter(user=user).first()
    if existing is not None:
        return AccountOutcome(user, "existing", f"Label Studio user {existing.ls_user_id}", existing.ls_email)
    email = (user.email or "").strip().lower()
    if not email:
        return AccountOutcome(user, "refused", "has no e-mail address in the app: Label Studio logs in by e-mail")
    generated = password is None
    password = password if password is not None else secrets.token_urlsafe(12)
    client = client or LabelStudioClient()
    me, how = _sign_up_or_log_in(client, email, password)
    if me is None:
        return AccountOutcome(
            user,
            "refused",
            f"Label Studio already has an account for {email} that the app did not make, and the app's "
            "password does not open it. Its answers are ignored. Delete it in Label Studio (Organization → "
            "members) and make the account again here.",
            email,
        )
    try:
        with transaction.atomic():
            account = LabelStudioAccount.objects.create(
                user=user, ls_user_id=int(me["id"]), ls_email=str(me["email"]).lower(), created_by=created_by
            )
    except IntegrityError:
        other = LabelStudioAccount.objects.filter(ls_user_id=int(me["id"])).select_related("user").first()
        owner = other.user if other else "another user"
        return AccountOutcome(user, "refused", f"Label Studio user {me['id']} is already recorded for {owner}", email)
    detail = f"Label Studio user {account.ls_user_id}"
    return AccountOutcome(user, how, detail, email, password if generated else "")


def _sign_up_or_log_in(client: LabelStudioClient, email: str, password: str) -> tuple[dict | None, str]:
    """(the Label Studio user, "created" | "adopted"), or (None, "") if the e-mail is someone else's.

    Each attempt first tries to log in with the password: after a sign-up whose answer was lost,
    the account exists and is ours — it is taken, never signed up twice.
    """
    for attempt in range(client.retries + 1):
        try:
            with LabelStudioBrowser(client.url, timeout=client.timeout) as browser:
                me = browser.try_log_in(email, password)
                if me is not None:
                    browser.log_out()
                    return me, "adopted" if attempt == 0 else "created"
                try:
                    me = browser.sign_up(email, password, client.invite_token())
                except LabelStudioAccountExists:
                    return None, ""
                browser.log_out()
                return me, "created"
        except LabelStudioUnavailable:
            if attempt == client.retries:
                raise
            client.sleep(client.backoff_seconds * 2**attempt)
    raise AssertionError("unreachable")


def labeling_member_accounts_ensure(
    *,
    project: Project,
    created_by: User | None,
    passwords: dict[str, str] | None = None,
    client: LabelStudioClient | None = None,
) -> list[AccountOutcome]:
    """A Label Studio account for every labelling member of the project who has none recorded.

    Stops at the first sign that Label Studio is unavailable; the accounts made until then are
    recorded and their passwords returned, and running it again makes the rest.
    """

    passwords = passwords or {}
    outcomes: list[AccountOutcome] = []
    members = labelling_members(project)
    client = client or LabelStudioClient()
    for index, user in enumerate(members):
        try:
            outcomes.append(
                labelstudio_account_ensure(
                    user=user, password=passwords.get(user.username), created_by=created_by, client=client
                )
            )
        except LabelStudioError as exc:
            outcomes.append(AccountOutcome(user, "failed", str(exc), user.email))
            if isinstance(exc, LabelStudioUnavailable):
                outcomes += [
                    AccountOutcome(other, "failed", "not tried: Label Studio is unavailable", other.email)
                    for other in members[index + 1 :]
                ]
                break
    for outcome in outcomes:
        logger.info("Label Studio account of %s: %s (%s)", outcome.user, outcome.status, outcome.detail)
    return outcomes
