"""The audit explorer says whether a person, an agent or the system acted."""

import re

from app.audit import service as audit
from app.audit.service import Actor
from tests.web.conftest import sign_in  # noqa: F401  (fixture)


def test_explorer_rows_show_who_acted_human_agent_or_system(client, sign_in, db):
    audit.record(db, actor=Actor(name="scorer-bot", id=None, role="agent"), action="risk_score.created",
                 entity_type="transaction", entity_id="t-1")
    audit.record(db, actor=Actor(name="system", id=None, role=None), action="case.lease_expired",
                 entity_type="case", entity_id="7")
    db.commit()
    sign_in("admin")
    html = client.get("/admin/audit").text
    kinds = {actor: kind for actor, kind in re.findall(
        r'<strong>([^<]+)</strong> <span class="badge badge-actor-(\w+)"', html)}
    assert kinds["scorer-bot"] == "agent"
    assert kinds["system"] == "system"
    assert "human" in kinds.values()  # the admin's own login event
