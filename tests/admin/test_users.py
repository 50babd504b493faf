"""Users API: every change revokes the user's tokens and is audited; the last admin stays."""

import threading

from sqlalchemy import select

from app.audit.models import AuditEvent
from app.users.models import User


def bearer(users, user) -> dict[str, str]:
    return {"Authorization": f"Bearer {users.token_for(user)}"}


def events(db, action: str) -> list[AuditEvent]:
    db.expire_all()
    return list(db.scalars(select(AuditEvent).where(AuditEvent.action == action).order_by(AuditEvent.id)))


def test_admin_creates_a_user_who_can_then_sign_in(client, users):
    admin = users.create("admin")
    response = client.post("/api/users", json={"username": "carol", "role": "analyst",
                                                "password": "copper-kettle-17"}, headers=bearer(users, admin))
    assert response.status_code == 201, response.text
    assert response.json()["role"] == "analyst" and response.json()["is_active"] is True
    token = client.post("/auth/token", data={"username": "carol", "password": "copper-kettle-17"})
    assert token.status_code == 200


def test_create_refuses_a_weak_password_and_a_taken_name_naming_the_field(client, users):
    admin = users.create("admin", username="root")
    weak = client.post("/api/users", json={"username": "dave", "role": "analyst", "password": "short"},
                       headers=bearer(users, admin))
    assert weak.status_code == 422 and weak.json()["detail"][0]["field"] == "password"
    taken = client.post("/api/users", json={"username": "root", "role": "analyst", "password": "long-enough-1"},
                        headers=bearer(users, admin))
    assert taken.status_code == 409


def test_disabling_a_user_revokes_their_existing_token_and_is_audited(client, users, db):
    admin = users.create("admin")
    analyst = users.create("analyst", username="erin")
    old = bearer(users, analyst)
    assert client.get("/api/cases", headers=old).status_code == 200

    response = client.post(f"/api/users/{analyst.id}/disable", headers=bearer(users, admin))
    assert response.status_code == 200 and response.json()["is_active"] is False

    assert client.get("/api/cases", headers=old).status_code == 401
    assert client.post("/auth/token", data={"username": "erin", "password": "correct-horse-battery"}).status_code == 401
    [event] = events(db, "user.disabled")
    assert event.entity_id == str(analyst.id) and event.actor == admin.username
    assert event.before is not None and event.after is not None
    assert event.before["is_active"] is True and event.after["is_active"] is False
    assert event.after["token_version"] == event.before["token_version"] + 1

    assert client.post(f"/api/users/{analyst.id}/enable", headers=bearer(users, admin)).status_code == 200
    assert client.get("/api/cases", headers=old).status_code == 401  # re-enabling does not revive old tokens
    db.expire_all()
    assert client.get("/api/cases", headers=bearer(users, db.get(User, analyst.id))).status_code == 200


def test_role_change_and_password_reset_each_revoke_old_tokens(client, users, db):
    admin = users.create("admin")
    analyst = users.create("analyst", username="frank")
    old = bearer(users, analyst)
    changed = client.put(f"/api/users/{analyst.id}/role", json={"role": "agent"}, headers=bearer(users, admin))
    assert changed.status_code == 200
    assert client.get("/transactions?limit=1", headers=old).status_code == 401
    [event] = events(db, "user.role_changed")
    assert event.before is not None and event.after is not None
    assert (event.before["role"], event.after["role"]) == ("analyst", "agent")

    db.expire_all()
    current = bearer(users, db.get(User, analyst.id))
    response = client.put(f"/api/users/{analyst.id}/password", json={"password": "brand-new-password"},
                          headers=bearer(users, admin))
    assert response.status_code == 200
    assert client.get("/transactions?limit=1", headers=current).status_code == 401
    assert client.post("/auth/token", data={"username": "frank", "password": "brand-new-password"}).status_code == 200
    [reset] = events(db, "user.password_reset")
    assert "password" not in str(reset.after).replace("password_changed", "")


def test_the_last_active_admin_cannot_be_disabled_or_demoted(client, users, db):
    admin = users.create("admin", username="only")
    headers = bearer(users, admin)
    disable = client.post(f"/api/users/{admin.id}/disable", headers=headers)
    assert disable.status_code == 409 and "last active admin" in disable.json()["detail"]
    demote = client.put(f"/api/users/{admin.id}/role", json={"role": "analyst"}, headers=headers)
    assert demote.status_code == 409
    db.expire_all()
    assert db.get(User, admin.id).role == "admin" and db.get(User, admin.id).is_active
    assert events(db, "user.disabled") == [] and events(db, "user.role_changed") == []


def test_with_two_admins_one_may_go(client, users, db):
    first = users.create("admin")
    second = users.create("admin")
    assert client.post(f"/api/users/{second.id}/disable", headers=bearer(users, first)).status_code == 200
    assert client.post(f"/api/users/{first.id}/disable", headers=bearer(users, first)).status_code == 409


def test_two_concurrent_demotions_of_the_only_two_admins_leave_one_admin(live_server, users, db):
    import httpx

    a = users.create("admin", username="ann")
    b = users.create("admin", username="ben")
    barrier = threading.Barrier(2)
    results: list[int] = []

    def demote(actor, target):
        with httpx.Client(base_url=live_server, timeout=30) as http:
            barrier.wait()
            response = http.put(f"/api/users/{target.id}/role", json={"role": "analyst"}, headers=bearer(users, actor))
            results.append(response.status_code)

    threads = [threading.Thread(target=demote, args=(a, b)), threading.Thread(target=demote, args=(b, a))]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    db.expire_all()
    admins = db.scalars(select(User).where(User.role == "admin", User.is_active)).all()
    assert len(admins) == 1
    # The loser waited on the admins' row locks, then saw it was the last one (409), or its
    # own token had been revoked by the winner's demotion by the time it was checked (401).
    assert sorted(results)[0] == 200 and sorted(results)[1] in (401, 409), results
    assert len(events(db, "user.role_changed")) == 1
