"""POST /auth/token: password login, throttling, audit trail and password storage."""

from argon2 import PasswordHasher
from jose import jwt
from sqlalchemy import func, select, text, update

from app.audit.models import AuditEvent
from app.config import get_settings
from app.users.models import LoginFailure, User
from tests.conftest import PASSWORD

WRONG = "wrong-password-123"


def count(db, model, *where) -> int:
    return db.scalar(select(func.count()).select_from(model).where(*where))


def audit_events(db, action: str) -> list[AuditEvent]:
    return list(db.scalars(select(AuditEvent).where(AuditEvent.action == action).order_by(AuditEvent.id)))


def assert_bad_credentials(response) -> None:
    assert response.status_code == 401, response.text
    assert response.headers["WWW-Authenticate"] == "Bearer"
    assert response.json() == {"detail": "Incorrect username or password"}


def assert_throttled(response) -> None:
    assert response.status_code == 429, response.text
    retry_after = response.headers["Retry-After"]
    assert retry_after.isdigit() and int(retry_after) > 0
    assert "access_token" not in response.json()


# --- success ---------------------------------------------------------------------------


def test_login_returns_a_bearer_token_with_its_lifetime(login, users):
    users.create("agent", username="alice")

    response = login("alice")

    assert response.status_code == 200
    body = response.json()
    assert set(body) == {"access_token", "token_type", "expires_in"}
    assert body["token_type"] == "bearer"
    assert body["expires_in"] == get_settings().access_token_minutes * 60


def test_issued_token_is_hs256_with_the_spec_claims(login, users):
    alice = users.create("analyst", username="alice")

    token = login("alice").json()["access_token"]

    assert jwt.get_unverified_header(token)["alg"] == "HS256"
    claims = jwt.decode(token, get_settings().signing_key, algorithms=["HS256"])
    assert {"sub", "role", "iat", "exp", "jti"} <= set(claims)
    assert claims["sub"] == str(alice.id)
    assert claims["role"] == "analyst"
    assert claims["exp"] - claims["iat"] == get_settings().access_token_minutes * 60


def test_issued_token_opens_the_api(client, login, users):
    users.create("analyst", username="alice")
    token = login("alice").json()["access_token"]

    response = client.get("/transactions", headers={"Authorization": f"Bearer {token}"})

    assert response.status_code == 200


def test_each_login_issues_a_distinct_token_id(login, users):
    users.create("agent", username="alice")
    first = jwt.get_unverified_claims(login("alice").json()["access_token"])
    second = jwt.get_unverified_claims(login("alice").json()["access_token"])
    assert first["jti"] != second["jti"]


# --- refusals --------------------------------------------------------------------------


def test_wrong_password_is_refused(login, users):
    users.create("agent", username="alice")
    assert_bad_credentials(login("alice", WRONG))


def test_unknown_user_is_refused_exactly_like_a_wrong_password(login, users):
    users.create("agent", username="alice")
    wrong_password = login("alice", WRONG)
    unknown_user = login("mallory", WRONG)
    assert_bad_credentials(unknown_user)
    assert unknown_user.json() == wrong_password.json()


def test_username_is_matched_exactly(login, users):
    users.create("agent", username="alice")
    assert_bad_credentials(login("Alice"))
    assert_bad_credentials(login(" alice"))


def test_disabled_user_is_refused_even_with_the_right_password(login, users, db):
    alice = users.create("agent", username="alice")
    db.execute(update(User).where(User.id == alice.id).values(is_active=False))
    db.commit()

    assert_bad_credentials(login("alice"))


def test_missing_field_is_a_422_naming_it_and_records_nothing(client, users, db):
    users.create("agent", username="alice")
    before = count(db, AuditEvent)

    no_password = client.post("/auth/token", data={"username": "alice"})
    empty_username = client.post("/auth/token", data={"username": "", "password": PASSWORD})

    assert no_password.status_code == 422
    assert [e["field"] for e in no_password.json()["detail"]] == ["password"]
    assert empty_username.status_code == 422
    assert [e["field"] for e in empty_username.json()["detail"]] == ["username"]
    assert count(db, AuditEvent) == before
    assert count(db, LoginFailure) == 0


def test_username_with_a_nul_byte_is_a_422_naming_it_and_records_nothing(client, users, db):
    # PostgreSQL text cannot hold NUL; this was a 500 from the driver before the form refused it.
    users.create("agent", username="alice")
    before = count(db, AuditEvent)

    response = client.post("/auth/token", data={"username": "ali\x00ce", "password": PASSWORD})

    assert response.status_code == 422
    assert [e["field"] for e in response.json()["detail"]] == ["username"]
    assert count(db, AuditEvent) == before
    assert count(db, LoginFailure) == 0


def test_json_body_instead_of_a_form_is_refused(client, users):
    users.create("agent", username="alice")
    response = client.post("/auth/token", json={"username": "alice", "password": PASSWORD})
    assert response.status_code == 422
    assert "access_token" not in response.json()


# --- throttling ------------------------------------------------------------------------


def test_five_failures_for_one_username_throttle_even_the_right_password(login, users):
    users.create("agent", username="alice")
    limit = get_settings().login_max_failures_per_user
    assert limit == 5

    for _ in range(limit):
        assert_bad_credentials(login("alice", WRONG))

    assert_throttled(login("alice"))
    assert_throttled(login("alice", WRONG))


def test_throttling_one_username_leaves_other_users_alone(login, users):
    users.create("agent", username="alice")
    users.create("agent", username="bob")
    for _ in range(get_settings().login_max_failures_per_user):
        login("alice", WRONG)

    assert_throttled(login("alice"))
    assert login("bob").status_code == 200


def test_failures_below_the_limit_do_not_throttle_and_success_resets_them(login, users):
    users.create("agent", username="alice")
    below_limit = get_settings().login_max_failures_per_user - 1

    for _round in range(2):
        for _ in range(below_limit):
            assert_bad_credentials(login("alice", WRONG))
        assert login("alice").status_code == 200


def test_failures_older_than_the_window_do_not_count(login, users, db):
    users.create("agent", username="alice")
    for _ in range(get_settings().login_max_failures_per_user):
        login("alice", WRONG)
    assert_throttled(login("alice"))

    db.execute(
        text("UPDATE login_failures SET failed_at = now() - make_interval(secs => :age)"),
        {"age": get_settings().login_failure_window_seconds + 60},
    )
    db.commit()

    assert login("alice").status_code == 200


def test_failures_for_unknown_usernames_count_towards_that_username(login):
    for _ in range(get_settings().login_max_failures_per_user):
        assert_bad_credentials(login("ghost", WRONG))
    assert_throttled(login("ghost", WRONG))


def test_many_failures_from_one_address_throttle_every_username_from_it(login, users, db):
    users.create("agent", username="alice")
    limit = get_settings().login_max_failures_per_address
    # Earlier failures from this client, spread so no single username reaches its own limit
    # (arranged in the table: each real attempt spends a full Argon2 verification).
    db.add_all(LoginFailure(username=f"guess{n}", client_addr="testclient") for n in range(limit - 1))
    db.commit()

    assert_bad_credentials(login("guess-last", WRONG))

    assert_throttled(login("alice"))


def test_throttled_attempts_are_not_counted_as_failures(login, users, db):
    users.create("agent", username="alice")
    limit = get_settings().login_max_failures_per_user
    for _ in range(limit):
        login("alice", WRONG)
    for _ in range(3):
        assert_throttled(login("alice", WRONG))

    assert count(db, LoginFailure, LoginFailure.username == "alice") == limit


# --- audit trail -----------------------------------------------------------------------


def test_failed_login_writes_an_audit_event_in_the_same_transaction(login, users, db):
    users.create("agent", username="alice")

    response = login("alice", WRONG)

    [event] = audit_events(db, "auth.login_failed")
    assert event.entity_type == "user"
    assert event.entity_id == "alice"
    assert event.actor_type == "system"
    assert event.reason == "bad credentials"
    assert event.request_id == response.headers["X-Request-ID"]
    assert event.client_addr == "testclient"
    # xmin is the id of the transaction that wrote a row: one transaction wrote both.
    failure_xid = db.scalar(text("SELECT xmin::text FROM login_failures WHERE username = 'alice'"))
    event_xid = db.scalar(text("SELECT xmin::text FROM audit_events WHERE id = :id"), {"id": event.id})
    assert failure_xid == event_xid


def test_failed_login_of_a_disabled_user_is_audited_as_such(login, users, db):
    alice = users.create("agent", username="alice")
    db.execute(update(User).where(User.id == alice.id).values(is_active=False))
    db.commit()

    login("alice")

    [event] = audit_events(db, "auth.login_failed")
    assert event.entity_id == "alice"
    assert event.reason == "user disabled"


def test_failed_login_of_an_unknown_user_is_audited(login, db):
    login("mallory", WRONG)
    [event] = audit_events(db, "auth.login_failed")
    assert event.entity_id == "mallory"


def test_successful_login_writes_an_audit_event_naming_the_user(login, users, db):
    alice = users.create("analyst", username="alice")

    response = login("alice")

    assert response.status_code == 200
    [event] = audit_events(db, "auth.login")
    assert event.actor == "alice"
    assert event.actor_id == alice.id
    assert event.actor_role == "analyst"
    assert event.actor_type == "human"
    assert event.entity_type == "user"
    assert event.entity_id == str(alice.id)
    assert event.request_id == response.headers["X-Request-ID"]
    assert audit_events(db, "auth.login_failed") == []


def test_agent_login_is_audited_as_an_agent(login, users, db):
    users.create("agent", username="bot")
    login("bot")
    [event] = audit_events(db, "auth.login")
    assert event.actor_type == "agent"


def test_throttled_login_is_audited(login, users, db):
    users.create("agent", username="alice")
    for _ in range(get_settings().login_max_failures_per_user):
        login("alice", WRONG)

    login("alice")

    assert len(audit_events(db, "auth.login_failed")) == get_settings().login_max_failures_per_user
    [event] = audit_events(db, "auth.login_throttled")
    assert event.entity_id == "alice"
    assert audit_events(db, "auth.login") == []


def test_audit_events_never_contain_a_password(login, users, db):
    users.create("agent", username="alice")
    login("alice", WRONG)
    login("alice")

    dump = db.scalar(text("SELECT string_agg(row_to_json(e)::text, '\n') FROM audit_events e"))
    assert PASSWORD not in dump
    assert WRONG not in dump


# --- password storage ------------------------------------------------------------------


def test_passwords_are_stored_as_argon2id_hashes(users, db):
    alice = users.create("agent", username="alice")

    stored = db.scalar(select(User.password_hash).where(User.id == alice.id))

    assert stored.startswith("$argon2id$")
    assert PASSWORD not in stored
    assert PasswordHasher().verify(stored, PASSWORD)


def test_two_users_with_the_same_password_get_different_hashes(users, db):
    users.create("agent", username="alice")
    users.create("agent", username="bob")
    hashes = db.scalars(select(User.password_hash)).all()
    assert len(set(hashes)) == 2
