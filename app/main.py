"""The app factory: middleware, routers, error handlers, lifespan."""

import gc
from contextlib import asynccontextmanager

from fastapi import FastAPI
from fastapi.responses import HTMLResponse
from fastapi.staticfiles import StaticFiles

from app import errors, openapi
from app.accounts.routes import router as accounts_router
from app.audit.evidence_routes import router as evidence_router
from app.audit.routes import router as audit_router
from app.auth.routes import router as auth_router
from app.cases.routes import router as cases_router
from app.config import PROJECT_ROOT, check_production_safety, get_settings
from app.db import database
from app.observability import RequestContextMiddleware, configure_logging
from app.ops.routes import router as ops_router
from app.reconciliation.routes import router as reconciliation_router
from app.risk.routes import router as risk_router
from app.rules.backtest_routes import router as rule_backtest_router
from app.rules.list_routes import router as rule_lists_router
from app.rules.routes import router as rules_router
from app.settings.routes import router as settings_router
from app.transactions.routes import router as transactions_router
from app.users.routes import router as users_router
from app.web import admin_lists, admin_rules, admin_rules_backtest, rules_case
from app.web.admin_audit import router as web_admin_audit_router
from app.web.admin_dashboard import router as web_admin_dashboard_router
from app.web.admin_settings import router as web_admin_settings_router
from app.web.admin_users import router as web_admin_users_router
from app.web.auth import router as web_auth_router
from app.web.cases import router as web_cases_router
from app.web.errors import install_not_found_page
from app.web.headers import SecurityHeadersMiddleware
from app.web.queue import router as web_queue_router
from app.web.reconciliation import UPLOAD_PATH
from app.web.reconciliation import router as web_reconciliation_router
from app.web.templating import templates
from app.web.webhooks import router as web_webhooks_router
from app.webhooks.routes import router as webhooks_router

# Vendored from npm swagger-ui-dist into static/ (its LICENSE and NOTICE beside it).
SWAGGER_UI_VERSION = "5.36.0"


def create_app() -> FastAPI:
    settings = get_settings()
    check_production_safety(settings)
    configure_logging(settings.log_level)

    @asynccontextmanager
    async def lifespan(app: FastAPI):
        # Everything loaded so far (modules, routes, models) lives as long as the process: out of
        # the collector's way, so a full collection scans only what requests made, not all of it
        # (it cost the batch path tens of µs per item; see bench/profile_rules.py).
        gc.collect()
        gc.freeze()
        yield
        database.dispose()

    app = FastAPI(
        title="Riskdesk",
        version="0.1.0",
        description="Risk review for payments: transactions, risk scores, review cases, audit.",
        lifespan=lifespan,
        # Our own /docs (below): FastAPI's loads Swagger UI from a CDN with an inline script.
        docs_url=None,
        redoc_url=None,
    )
    errors.install(app)
    openapi.install(app)
    app.include_router(ops_router)
    app.include_router(auth_router)
    app.include_router(transactions_router)
    app.include_router(accounts_router)
    app.include_router(risk_router)
    app.include_router(cases_router)
    app.include_router(reconciliation_router)
    app.include_router(webhooks_router)
    app.include_router(rule_backtest_router)  # before rules_router's /api/rules/{rule_id}
    app.include_router(rules_router)
    app.include_router(rule_lists_router)
    install_not_found_page(app)
    app.include_router(web_auth_router)
    app.include_router(web_queue_router)
    app.include_router(web_cases_router)
    for admin_router in (audit_router, evidence_router, users_router, settings_router, web_admin_audit_router,
                         web_admin_users_router, web_admin_settings_router, web_admin_dashboard_router):
        app.include_router(admin_router)
    app.include_router(web_reconciliation_router)
    app.include_router(web_webhooks_router)
    for rules_screen in (admin_rules, admin_rules_backtest, admin_lists, rules_case):
        app.include_router(rules_screen.router)
    install_docs(app)
    app.mount("/static", StaticFiles(directory=PROJECT_ROOT / "static"), name="static")
    app.add_middleware(SecurityHeadersMiddleware, production=settings.is_production)
    app.add_middleware(
        RequestContextMiddleware, max_body_bytes=settings.max_body_bytes,
        path_limits={UPLOAD_PATH: settings.max_upload_bytes},
    )
    return app


def install_docs(app: FastAPI) -> None:
    """GET /docs: Swagger UI from static/, so it works offline and under the app's CSP."""

    @app.get("/docs", include_in_schema=False)
    def swagger_ui() -> HTMLResponse:
        html = templates.get_template("docs.html").render(
            title=app.title, openapi_url=app.openapi_url, swagger_ui_version=SWAGGER_UI_VERSION,
        )
        return HTMLResponse(html)


app = create_app()
