"""The admin dashboard, `/admin/dashboard`: queue health and activity as charts.

The page and its HTMX refresh (every 30 s, `#dashboard` swapped whole) share one
template; chart data travels in data-chart attributes as JSON and static/dashboard.js
draws it (no inline script under the CSP), again after every swap.
"""

from typing import Annotated

from fastapi import APIRouter, Query, Request

from app.admin import dashboard
from app.db import DbSession
from app.web.deps import BrowserAdmin, ScreenRoute
from app.web.templating import render

router = APIRouter(route_class=ScreenRoute)

PALETTE = {"approved": "#1c7c3c", "rejected": "#b42318", "escalated": "#9a5b00",
           "human": "#2b5a8f", "agent": "#7c3aed", "system": "#98a2b3"}


def _charts(board: dashboard.Dashboard) -> dict[str, dict]:
    """Chart.js configurations (data only; options are set in static/dashboard.js)."""
    decisions = {
        "type": "bar",
        "labels": board.day_labels,
        "stacked": True,
        "datasets": [{"label": name, "data": values, "color": PALETTE[name]}
                     for name, values in board.decisions_per_day.items()],
    }
    scores = {
        "type": "bar", "labels": board.score_buckets, "stacked": False,
        "datasets": [{"label": "risk scores", "data": board.score_counts, "color": "#2563eb"}],
    }
    kinds = ("scores", "decisions")
    actor_types = sorted({t for k in kinds for t in board.actor_types[k]} | {"human", "agent"})
    actors = {
        "type": "bar", "labels": ["Risk scores posted", "Case decisions"], "stacked": True, "horizontal": True,
        "datasets": [{"label": t, "data": [board.actor_types[k].get(t, 0) for k in kinds],
                      "color": PALETTE.get(t, "#667")}
                     for t in actor_types],
    }
    return {"decisions": decisions, "scores": scores, "actors": actors}


@router.get("/admin/dashboard")
def dashboard_page(request: Request, session: DbSession, principal: BrowserAdmin,
                   days: Annotated[int, Query()] = 14):
    days = days if days in dashboard.WINDOWS else dashboard.WINDOWS[0]
    board = dashboard.build(session=session, days=days)
    context = {"board": board, "charts": _charts(board), "windows": dashboard.WINDOWS, "active_nav": "dashboard"}
    template = ("admin/dashboard/_dashboard.html" if request.headers.get("hx-target") == "dashboard"
                else "admin/dashboard/index.html")
    return render(request, template, context, principal=principal)
