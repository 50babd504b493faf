"""Every place a password is set refuses guessable ones and ones that contain the username.

The users API (create, reset), the users screen (create, reset) and `python -m app
create-user`; the demo passwords meet the same rule.
"""

import os
import subprocess
import sys

import pytest
from sqlalchemy import func, select

from app import demo
from app.audit.models import AuditEvent
from app.security.passwords import WeakPassword, check_password_strength
from app.users.models import User
from tests.conftest import PASSWORD, ROOT
from tests.web.conftest import meta_csrf, submit_login

COMMON = ["password123", "qwertyuiop", "Password1!", "iloveyou12", "1234567890", "Summer2024!"]


def user_events(db) -> int:
    db.expire_all()
    return db.scalar(select(func.count()).where(AuditEvent.action.like("user.%")))


@pytest.fixture
def admin(users):
    return users.headers("admin", username="root")


@pytest.fixture
def screen_token(client, users) -> str:
    """Sign the test client in as an admin; the users screen's CSRF token."""
    users.create("admin", username="root")
    assert submit_login(client, "root").status_code == 303
    return meta_csrf(client.get("/admin/users").text)


# --- the rule --------------------------------------------------------------------------


@pytest.mark.parametrize("password", COMMON)
def test_common_passwords_are_refused_with_advice(password):
    with pytest.raises(WeakPassword, match="too easy to guess"):
        check_password_strength(password)


@pytest.mark.parametrize(("username", "password"), [
    ("carol", "carol-password-1"), ("Carol", "my-CAROL-is-7-long"), ("admin", "admin-demo-password"),
    ("agent", "agent-demo-password"),
])
def test_a_password_containing_the_username_is_refused_whatever_the_case(username, password):
    with pytest.raises(WeakPassword, match="must not contain the username"):
        check_password_strength(password, username=username)


def test_the_tests_and_the_demo_use_passwords_that_pass():
    check_password_strength(PASSWORD, username="agent1")
    for username, _role, password in demo.DEMO_USERS:
        check_password_strength(password, username=username)


# --- the users API ---------------------------------------------------------------------


@pytest.mark.parametrize(("username", "password"), [("dana", "password123"), ("dana", "Dana-says-hello-42")])
def test_the_api_refuses_a_weak_new_user_password_with_a_422_naming_it(client, admin, db, username, password):
    before = user_events(db)
    response = client.post("/api/users", json={"username": username, "role": "analyst", "password": password},
                           headers=admin)

    assert response.status_code == 422, response.text
    [error] = response.json()["detail"]
    assert error["field"] == "password"
    assert error["msg"].startswith("password ") and password not in error["msg"]
    assert db.scalar(select(func.count()).where(User.username == username)) == 0
    assert user_events(db) == before


@pytest.mark.parametrize("password", ["password123", "Erin-the-analyst-42"])
def test_the_api_refuses_a_weak_reset_password_with_a_422_naming_it(client, admin, users, db, password):
    erin = users.create("analyst", username="erin")
    before = user_events(db)

    response = client.put(f"/api/users/{erin.id}/password", json={"password": password}, headers=admin)

    assert response.status_code == 422, response.text
    assert [e["field"] for e in response.json()["detail"]] == ["password"]
    db.expire_all()
    assert db.get(User, erin.id).token_version == erin.token_version
    assert user_events(db) == before
    assert client.post("/auth/token", data={"username": "erin", "password": PASSWORD}).status_code == 200


# --- the users screen ------------------------------------------------------------------


def test_the_screen_refuses_a_weak_new_user_password_with_a_sentence(client, screen_token, db):
    response = client.post("/admin/users", data={"username": "dana", "role": "analyst", "password": "password123"},
                           headers={"X-CSRF-Token": screen_token, "HX-Request": "true", "HX-Target": "users-panel"})

    assert response.status_code == 422
    assert "too easy to guess" in response.text
    assert db.scalar(select(func.count()).where(User.username == "dana")) == 0


def test_the_screen_refuses_a_reset_password_containing_the_username(client, screen_token, users, db):
    erin = users.create("analyst", username="erin")

    response = client.post(f"/admin/users/{erin.id}/password", data={"password": "ERIN-reviews-payments"},
                           headers={"X-CSRF-Token": screen_token, "HX-Request": "true", "HX-Target": "users-panel"})

    assert response.status_code == 422
    assert "must not contain the username" in response.text
    db.expire_all()
    assert db.get(User, erin.id).token_version == erin.token_version


# --- the command line ------------------------------------------------------------------


@pytest.mark.parametrize(("password", "message"), [
    ("password123", "too easy to guess"), ("carol-password-1", "must not contain the username"),
])
def test_create_user_on_the_command_line_refuses_a_weak_password(database_url, db, password, message):
    env = {**os.environ, "DATABASE_URL": database_url, "APP_ENV": "test", "LOG_LEVEL": "WARNING"}
    result = subprocess.run(
        [sys.executable, "-m", "app", "create-user", "carol", "--role", "analyst", "--password-stdin"],
        check=False, input=password + "\n", capture_output=True, text=True, cwd=ROOT, env=env, timeout=120,
    )

    assert result.returncode != 0
    assert message in result.stderr and password not in result.stderr
    assert db.scalar(select(func.count()).where(User.username == "carol")) == 0
