"""POST /login: the demo user's password for a signed bearer token."""

from __future__ import annotations

import asyncio
import hmac

from fastapi import APIRouter, HTTPException

from readykit.demo.auth import issue_token, verify_password
from readykit.demo.routes.deps import State
from readykit.demo.schemas import LoginIn, TokenOut

router = APIRouter(tags=["auth"])


@router.post("/login", responses={401: {"description": "Wrong username or password"}})
async def login(body: LoginIn, state: State) -> TokenOut:
    """Exchange the demo user's credentials for a bearer token."""
    settings = state.settings
    # scrypt is deliberately slow: keep it off the event loop; always run it, known user or not
    password_ok = await asyncio.to_thread(
        verify_password, body.password, settings.password_hash.get_secret_value()
    )
    user_ok = hmac.compare_digest(body.username.encode(), settings.username.encode())
    if not (user_ok and password_ok):
        raise HTTPException(
            401, "invalid username or password", headers={"WWW-Authenticate": "Bearer"}
        )
    token = issue_token(settings.username, settings.secret.get_secret_value(), settings.token_ttl_s)
    return TokenOut(access_token=token, expires_in=settings.token_ttl_s)
