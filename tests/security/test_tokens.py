"""Bearer tokens: only a genuine, unexpired HS256 token of a live, unchanged user gets in.

Every forged token starts from the claims of a real user, so the one defect under test is
the only reason it can be refused; the control test shows the same claims do get in.
"""

import base64
import json
import time
import uuid

import pytest
from jose import jwt
from sqlalchemy import delete, text, update

from app.config import get_settings
from app.users.models import User

PROTECTED = "/transactions"


def b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def b64url_json(value) -> str:
    return b64url(json.dumps(value, separators=(",", ":")).encode())


def claims_for(user, **overrides) -> dict:
    """The claims the app itself would issue for `user`, valid for ten minutes."""
    now = int(time.time())
    claims = {
        "sub": str(user.id),
        "role": user.role,
        "iat": now,
        "exp": now + 600,
        "jti": uuid.uuid4().hex,
        "ver": user.token_version,
        "name": user.username,
    }
    claims.update(overrides)
    return claims


def sign(claims: dict, *, key: str | None = None, algorithm: str = "HS256") -> str:
    return jwt.encode(claims, key or get_settings().signing_key, algorithm=algorithm)


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def assert_refused(response) -> None:
    assert response.status_code == 401, response.text
    assert response.headers["WWW-Authenticate"] == "Bearer"
    assert isinstance(response.json()["detail"], str)


@pytest.fixture
def agent(users):
    return users.create("agent")


def test_genuine_token_of_a_live_user_is_accepted(client, agent):
    response = client.get(PROTECTED, headers=bearer(sign(claims_for(agent))))
    assert response.status_code == 200
    assert response.json() == {"items": [], "next_cursor": None}


def test_missing_authorization_header_is_refused(client):
    assert_refused(client.get(PROTECTED))


@pytest.mark.parametrize(
    "header",
    ["Bearer", "Bearer ", "Basic YWdlbnQxOmNvcnJlY3QtaG9yc2UtYmF0dGVyeQ==", "Token abc.def.ghi"],
    ids=["bearer-without-token", "bearer-blank", "basic-credentials", "other-scheme"],
)
def test_authorization_header_without_a_bearer_token_is_refused(client, header):
    assert_refused(client.get(PROTECTED, headers={"Authorization": header}))


def test_genuine_token_under_another_scheme_is_refused(client, agent):
    token = sign(claims_for(agent))
    assert_refused(client.get(PROTECTED, headers={"Authorization": f"Basic {token}"}))


@pytest.mark.parametrize(
    "garbage",
    ["garbage", "a.b.c", "...", "e30.e30.", "Zm9v.YmFy.YmF6", "x" * 4000],
    ids=["word", "three-words", "only-dots", "empty-json-no-signature", "base64-not-json", "very-long"],
)
def test_garbage_token_is_refused(client, garbage):
    assert_refused(client.get(PROTECTED, headers=bearer(garbage)))


def test_unsigned_alg_none_token_is_refused(client, agent):
    for alg in ("none", "None", "NONE"):
        header = b64url_json({"alg": alg, "typ": "JWT"})
        forged = f"{header}.{b64url_json(claims_for(agent))}."
        assert_refused(client.get(PROTECTED, headers=bearer(forged)))


def test_token_signed_with_a_wrong_key_is_refused(client, agent):
    forged = sign(claims_for(agent), key="not-the-server-key-but-long-enough-to-look-real")
    assert_refused(client.get(PROTECTED, headers=bearer(forged)))


def test_token_signed_with_another_hmac_algorithm_is_refused(client, agent):
    # Right key, but only HS256 is accepted: the algorithm is pinned, not read from the token.
    forged = sign(claims_for(agent), algorithm="HS512")
    assert_refused(client.get(PROTECTED, headers=bearer(forged)))


def test_expired_token_is_refused(client, agent):
    issued = int(time.time()) - 7200
    expired = sign(claims_for(agent, iat=issued, exp=issued + 3600))
    assert_refused(client.get(PROTECTED, headers=bearer(expired)))


@pytest.mark.parametrize("claim", ["exp", "sub", "role", "iat", "jti", "ver"])
def test_token_missing_a_required_claim_is_refused(client, agent, claim):
    claims = claims_for(agent)
    del claims[claim]
    assert_refused(client.get(PROTECTED, headers=bearer(sign(claims))))


def test_tampered_role_claim_is_refused(client, users):
    analyst = users.create("analyst")
    header, _, signature = sign(claims_for(analyst)).split(".")
    for role in ("agent", "admin"):
        payload = b64url_json(claims_for(analyst, role=role))
        forged = f"{header}.{payload}.{signature}"
        assert_refused(client.get(PROTECTED, headers=bearer(forged)))
        assert_refused(client.post(PROTECTED, headers=bearer(forged), json={}))


def test_tampered_subject_claim_is_refused(client, users):
    analyst = users.create("analyst")
    admin = users.create("admin")
    header, _, signature = sign(claims_for(analyst)).split(".")
    forged = f"{header}.{b64url_json(claims_for(analyst, sub=str(admin.id), role='admin'))}.{signature}"
    assert_refused(client.get(PROTECTED, headers=bearer(forged)))


def test_token_of_a_disabled_user_is_refused(client, db, agent):
    token = sign(claims_for(agent))
    assert client.get(PROTECTED, headers=bearer(token)).status_code == 200

    db.execute(update(User).where(User.id == agent.id).values(is_active=False))
    db.commit()

    assert_refused(client.get(PROTECTED, headers=bearer(token)))


def test_token_of_a_deleted_user_is_refused(client, db, agent):
    token = sign(claims_for(agent))
    db.execute(delete(User).where(User.id == agent.id))
    db.commit()
    assert_refused(client.get(PROTECTED, headers=bearer(token)))


def test_token_issued_before_a_role_change_is_refused(client, db, users):
    analyst = users.create("analyst")
    old_token = users.token_for(analyst)
    assert client.get(PROTECTED, headers=bearer(old_token)).status_code == 200

    db.execute(update(User).where(User.id == analyst.id).values(role="agent"))
    db.commit()
    db.refresh(analyst)

    assert_refused(client.get(PROTECTED, headers=bearer(old_token)))
    assert client.get(PROTECTED, headers=bearer(users.token_for(analyst))).status_code == 200


def test_token_issued_before_a_token_version_bump_is_refused(client, db, agent, users):
    # A bump (password reset, disable, role change) revokes every token issued before it.
    old_token = users.token_for(agent)
    db.execute(update(User).where(User.id == agent.id).values(token_version=User.token_version + 1))
    db.commit()
    db.refresh(agent)

    assert_refused(client.get(PROTECTED, headers=bearer(old_token)))
    assert client.get(PROTECTED, headers=bearer(users.token_for(agent))).status_code == 200


def test_role_changed_and_back_still_refuses_the_old_token_after_a_version_bump(client, db, users):
    analyst = users.create("analyst")
    old_token = users.token_for(analyst)
    db.execute(
        update(User).where(User.id == analyst.id).values(role="admin", token_version=User.token_version + 1)
    )
    db.commit()
    db.execute(
        update(User).where(User.id == analyst.id).values(role="analyst", token_version=User.token_version + 1)
    )
    db.commit()

    assert_refused(client.get(PROTECTED, headers=bearer(old_token)))


def test_refused_token_never_reaches_the_handler(client, db, agent):
    forged = sign(claims_for(agent), key="wrong-key-wrong-key-wrong-key-wrong-key")
    response = client.post(
        PROTECTED,
        headers=bearer(forged),
        json={"account_id": "acct_1", "reference": "forged-1", "amount": "10.00", "currency": "USD"},
    )
    assert_refused(response)
    follow_up = client.get("/transactions/forged-1", headers=bearer(sign(claims_for(agent))))
    assert follow_up.status_code == 404


def test_refused_token_is_a_401_even_where_the_handler_would_fail_first(client, db, agent):
    # A NUL in the reference is a 404 decided before any SQL; a dead token must still be a 401.
    token = sign(claims_for(agent))
    assert client.get("/transactions/bad%00ref", headers=bearer(token)).status_code == 404
    db.execute(update(User).where(User.id == agent.id).values(is_active=False))
    db.commit()
    assert_refused(client.get("/transactions/bad%00ref", headers=bearer(token)))


def test_write_with_a_token_of_a_disabled_user_stores_nothing(client, db, agent):
    token = sign(claims_for(agent))
    db.execute(update(User).where(User.id == agent.id).values(is_active=False))
    db.commit()
    body = {"account_id": "acct_1", "reference": "after-disable-1", "amount": "10.00", "currency": "USD"}
    assert_refused(client.post(PROTECTED, headers=bearer(token), json=body))
    batch = {"items": [{**body, "reference": "after-disable-2"}]}
    assert_refused(client.post(f"{PROTECTED}/batch", headers=bearer(token), json=batch))
    assert db.execute(text("SELECT count(*) FROM transactions")).scalar() == 0
    assert db.execute(text("SELECT count(*) FROM audit_events WHERE action = 'transaction.created'")).scalar() == 0


def test_token_naming_another_user_is_refused(client, users, agent):
    other = users.create("agent")
    assert_refused(client.get(PROTECTED, headers=bearer(sign(claims_for(agent, name=other.username)))))


@pytest.mark.parametrize("named", [True, False], ids=["with name claim", "older token without name claim"])
def test_both_token_generations_act_under_the_users_own_name(client, db, agent, named):
    claims = claims_for(agent)
    if not named:
        del claims["name"]
    body = {"account_id": "acct_1", "reference": f"named-{named}", "amount": "10.00", "currency": "USD"}
    assert client.post(PROTECTED, headers=bearer(sign(claims)), json=body).status_code == 200
    actor = db.execute(
        text("SELECT actor FROM audit_events WHERE action = 'transaction.created' AND entity_id = :ref"),
        {"ref": body["reference"]},
    ).scalar_one()
    assert actor == agent.username


def test_older_token_without_name_claim_of_a_disabled_user_is_refused(client, db, agent):
    claims = claims_for(agent)
    del claims["name"]
    token = sign(claims)
    assert client.get(PROTECTED, headers=bearer(token)).status_code == 200
    db.execute(update(User).where(User.id == agent.id).values(is_active=False))
    db.commit()
    assert_refused(client.get(PROTECTED, headers=bearer(token)))


# --- claims of a well-signed token are still input: wrong types and ranges are a 401, never a 500 ----

MAX_LIFETIME = max(get_settings().access_token_minutes, get_settings().browser_session_minutes) * 60


def _now() -> int:
    return int(time.time())


@pytest.mark.parametrize("overrides", [
    {"ver": 2**31}, {"ver": 2**63}, {"ver": -1}, {"ver": "0"}, {"ver": True}, {"ver": 0.5}, {"ver": None},
    {"name": "agent\x00"}, {"name": "x" * 65}, {"name": ""}, {"name": 7}, {"name": ["a"]},
    {"sub": "abc"}, {"sub": "1.5"}, {"sub": "-1"}, {"sub": " 1"}, {"sub": "01"}, {"sub": str(2**63)}, {"sub": 1},
    {"sub": "\u0661"}, {"sub": None}, {"sub": {"id": 1}},
    {"exp": "9999999999"}, {"exp": None}, {"exp": [1]}, {"exp": True}, {"iat": "0"}, {"iat": None}, {"iat": {}},
    {"role": "boss"}, {"role": "admin\x00"}, {"role": 1},
    {"jti": ""}, {"jti": "x" * 65}, {"jti": "a\x00b"}, {"jti": 5},
    {"exp": 10**20}, {"iat": -5},
], ids=repr)
def test_a_claim_of_the_wrong_type_or_range_is_refused_not_a_500(client, agent, overrides):
    claims = claims_for(agent, **overrides)
    assert_refused(client.get(PROTECTED, headers=bearer(sign(claims))))


def test_a_token_issued_in_the_future_beyond_the_leeway_is_refused(client, agent):
    assert_refused(client.get(PROTECTED, headers=bearer(sign(claims_for(agent, iat=_now() + 600, exp=_now() + 900)))))


def test_a_clock_a_little_ahead_is_tolerated(client, agent):
    response = client.get(PROTECTED, headers=bearer(sign(claims_for(agent, iat=_now() + 30, exp=_now() + 600))))
    assert response.status_code == 200, response.text


def test_a_token_living_longer_than_the_app_ever_issues_is_refused(client, agent):
    now = _now()
    assert_refused(client.get(PROTECTED, headers=bearer(sign(claims_for(agent, iat=now, exp=now + MAX_LIFETIME + 1)))))
    at_most = client.get(PROTECTED, headers=bearer(sign(claims_for(agent, iat=now, exp=now + MAX_LIFETIME))))
    assert at_most.status_code == 200, at_most.text


def test_a_token_that_expires_before_it_was_issued_is_refused(client, agent):
    now = _now()
    assert_refused(client.get(PROTECTED, headers=bearer(sign(claims_for(agent, iat=now + 30, exp=now + 20)))))


def test_fractional_numeric_dates_are_numbers_and_accepted(client, agent):
    now = time.time()
    response = client.get(PROTECTED, headers=bearer(sign(claims_for(agent, iat=now, exp=now + 600.5))))
    assert response.status_code == 200, response.text


@pytest.mark.parametrize("payload", [b"[1, 2]", b'"text"', b"null", b"{}"], ids=repr)
def test_a_signed_payload_that_is_not_a_claims_object_is_refused(client, payload):
    import hashlib
    import hmac

    signing_input = f"{b64url_json({'alg': 'HS256', 'typ': 'JWT'})}.{b64url(payload)}"
    signature = hmac.new(get_settings().signing_key.encode(), signing_input.encode(), hashlib.sha256).digest()
    assert_refused(client.get(PROTECTED, headers=bearer(f"{signing_input}.{b64url(signature)}")))


def test_a_browser_session_with_a_bad_claim_is_the_login_page_not_a_500(client, agent, users):
    from app.security.sessions import session_key
    from app.web.session import SESSION_COOKIE

    analyst = users.create("analyst")
    client.cookies.set(SESSION_COOKIE, sign(claims_for(analyst, ver=2**40, name="a\x00"),
                                            key=session_key(get_settings())))
    response = client.get("/", follow_redirects=False)
    assert response.status_code == 303 and response.headers["location"].startswith("/login")


# The reads that send no BEGIN: the check rides with their only statement (ReadOnlyRoute).
@pytest.mark.parametrize("path", ["/transactions/no-such-reference", "/accounts/acct_none/context"])
def test_a_disabled_users_token_is_refused_by_the_one_statement_reads_before_any_404(client, db, agent, path):
    token = sign(claims_for(agent))
    assert client.get(path, headers=bearer(token)).status_code in (200, 404)

    db.execute(update(User).where(User.id == agent.id).values(is_active=False))
    db.commit()

    assert_refused(client.get(path, headers=bearer(token)))
