"""Failed-sign-in limits on the HTML login pages (apps/accounts/login_throttle.py)."""

import pytest
from django.core.cache import cache
from django.test import Client

from apps.accounts.services import user_create
from apps.core.permissions import Role

LOGIN = "/accounts/login/"
PASSWORD = "s3cret-pass-x"


@pytest.fixture(autouse=True)
def _limits(settings):
    settings.LOGIN_FAILURE_LIMIT = 3
    settings.LOGIN_FAILURE_LIMIT_PER_IP = 8
    settings.LOGIN_FAILURE_WINDOW_SECONDS = 600
    cache.clear()
    yield
    cache.clear()


@pytest.fixture
def lea(db):
    return user_create(username="lea", password=PASSWORD, role=Role.LEAD)


def _post(client, username, password, ip="10.0.0.1", path=LOGIN):
    return client.post(path, {"username": username, "password": password}, REMOTE_ADDR=ip)


def test_after_the_limit_even_the_right_password_gets_429(client, lea):
    assert [_post(client, "lea", "wrong").status_code for _ in range(3)] == [200, 200, 200]
    response = _post(client, "lea", PASSWORD)
    assert response.status_code == 429
    assert "Too many failed sign-ins; try again in 10 minutes." in response.content.decode()
    assert 590 <= int(response["Retry-After"]) <= 600
    assert "_auth_user_id" not in client.session  # the password was not even checked


def test_another_username_or_address_is_unaffected(client, lea, db):
    user_create(username="ann", password=PASSWORD, role=Role.ANNOTATOR)
    for _ in range(3):
        _post(client, "lea", "wrong")
    assert _post(Client(), "ann", PASSWORD).status_code == 302  # same address, other user
    assert _post(Client(), "lea", PASSWORD, ip="10.0.0.2").status_code == 302  # same user, other address
    assert _post(Client(), "LEA", PASSWORD).status_code == 429  # usernames are counted case-blind


def test_a_successful_sign_in_resets_the_count(client, lea):
    for _ in range(2):
        _post(client, "lea", "wrong")
    assert _post(client, "lea", PASSWORD).status_code == 302
    client.logout()
    assert [_post(client, "lea", "wrong").status_code for _ in range(3)] == [200, 200, 200]
    assert _post(client, "lea", PASSWORD).status_code == 429


def test_signing_in_works_again_after_the_window(client, lea, monkeypatch):
    import time

    clock = [time.time()]
    monkeypatch.setattr(time, "time", lambda: clock[0])  # the limiter's clock and the cache's expiry alike
    for _ in range(3):
        _post(client, "lea", "wrong")
    assert _post(client, "lea", PASSWORD).status_code == 429
    clock[0] += 60 * 9
    response = _post(client, "lea", PASSWORD)
    assert response.status_code == 429 and "try again in 1 minute." in response.content.decode()
    clock[0] += 61
    assert _post(client, "lea", PASSWORD).status_code == 302


def test_many_usernames_from_one_address_hit_the_address_limit(client, lea):
    for i in range(8):
        assert _post(client, f"guess{i}", "wrong").status_code == 200
    assert _post(client, "lea", PASSWORD).status_code == 429
    assert _post(client, "lea", PASSWORD, ip="10.0.0.9").status_code == 302


def test_x_forwarded_for_is_ignored_unless_a_proxy_is_trusted(client, lea, settings):
    def post(password, forwarded_for):
        return client.post(LOGIN, {"username": "lea", "password": password}, HTTP_X_FORWARDED_FOR=forwarded_for)

    for i in range(3):
        post("wrong", f"1.2.3.{i}")
    assert post(PASSWORD, "9.9.9.9").status_code == 429  # a forged header does not make a new address
    cache.clear()
    settings.REST_FRAMEWORK = {**settings.REST_FRAMEWORK, "NUM_PROXIES": 1}
    for _ in range(3):
        post("wrong", "1.2.3.4")
    assert post(PASSWORD, "9.9.9.9").status_code == 302  # behind one proxy: the address it saw


def test_the_admin_login_page_has_the_same_limit(client, db):
    from django.contrib.auth.models import User

    User.objects.create_superuser("root", "root@example.com", PASSWORD)
    assert [_post(client, "root", "wrong", path="/admin/login/").status_code for _ in range(3)] == [200] * 3
    assert _post(client, "root", PASSWORD, path="/admin/login/").status_code == 429
    assert _post(client, "root", PASSWORD, ip="10.0.0.2", path="/admin/login/").status_code == 302


def test_the_login_page_itself_is_never_throttled(client, lea):
    for _ in range(5):
        _post(client, "lea", "wrong")
    assert client.get(LOGIN, REMOTE_ADDR="10.0.0.1").status_code == 200


def test_the_api_token_throttle_still_works_beside_it(api_client, lea):
    codes = [api_client.post("/api/auth/token/", {"username": "lea", "password": "y"}).status_code for _ in range(21)]
    assert codes[:20] == [400] * 20 and codes[-1] == 429
    assert _post(Client(), "lea", PASSWORD, ip="127.0.0.1").status_code == 302  # separate counters
