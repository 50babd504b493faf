"""The app factory: middleware, routers, error handlers, lifespan."""

from contextlib import asynccontextmanager

from fastapi import FastAPI

from app import errors
from app.auth.routes import router as auth_router
from app.config import check_production_safety, get_settings
from app.db import database
from app.observability import RequestContextMiddleware, configure_logging
from app.ops.routes import router as ops_router
from app.transactions.routes import router as transactions_router
from app.cases.routes import router as cases_router
from app.risk.routes import router as risk_router


def create_app() -> FastAPI:
    settings = get_settings()
    check_production_safety(settings)
    configure_logging(settings.log_level)

    @asynccontextmanager
    async def lifespan(app: FastAPI):
        yield
        database.dispose()

    app = FastAPI(
        title="Riskdesk",
        version="0.1.0",
        description="Risk review for payments: transactions, risk scores, review cases, audit.",
        lifespan=lifespan,
        docs_url="/docs",
        redoc_url=None,
    )
    errors.install(app)
    app.include_router(ops_router)
    app.include_router(auth_router)
    app.include_router(transactions_router)
    app.include_router(risk_router)
    app.include_router(cases_router)
    app.add_middleware(RequestContextMiddleware, max_body_bytes=settings.max_body_bytes)
    return app


app = create_app()
