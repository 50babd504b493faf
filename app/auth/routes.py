from typing import Annotated

from fastapi import APIRouter, Form, Request
from fastapi.responses import JSONResponse
from pydantic import AfterValidator, BaseModel

from app.auth import service
from app.config import get_settings
from app.db import DbSession
from app.uow.routing import ApiRoute

router = APIRouter(tags=["auth"], route_class=ApiRoute)


class TokenResponse(BaseModel):
    access_token: str
    token_type: str = "bearer"
    expires_in: int


def _no_nul(value: str) -> str:
    # PostgreSQL text cannot hold NUL: refuse it here as bad input, not as a 500 from the driver.
    if "\x00" in value:
        raise ValueError("must not contain NUL characters")
    return value


def client_address(request: Request) -> str:
    return request.client.host if request.client else "unknown"


@router.post(
    "/auth/token",
    response_model=TokenResponse,
    summary="Exchange username and password for a bearer token",
    responses={401: {"description": "Bad credentials"}, 429: {"description": "Too many failed logins"},
               422: {"description": "Missing username or password"}},
)
def issue_token(
    request: Request,
    session: DbSession,
    username: Annotated[str, Form(min_length=1, max_length=256, examples=["agent"]), AfterValidator(_no_nul)],
    password: Annotated[str, Form(min_length=1, max_length=1024, examples=["tireless-robot-demo"])],
):
    # Failures return (not raise) so the unit of work commits the failure record and its audit event.
    result = service.login(
        session=session, username=username, password=password,
        client_addr=client_address(request), settings=get_settings(),
    )
    if result.throttled:
        return JSONResponse(
            {"detail": "Too many failed logins; try again later"}, status_code=429,
            headers={"Retry-After": str(get_settings().login_failure_window_seconds)},
        )
    if result.access_token is None:
        return JSONResponse(
            {"detail": "Incorrect username or password"}, status_code=401, headers={"WWW-Authenticate": "Bearer"}
        )
    return TokenResponse(access_token=result.access_token, expires_in=result.expires_in)
