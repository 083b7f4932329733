"""Swagger UI and ReDoc served from assets inside installed packages, so ``/docs`` works offline:
no request leaves the machine (ReDoc's footer logo and Swagger's validator badge would)."""

from __future__ import annotations

from functools import cache
from importlib.resources import files
from pathlib import Path

from fastapi import FastAPI
from fastapi.openapi.docs import (
    get_redoc_html,
    get_swagger_ui_html,
    get_swagger_ui_oauth2_redirect_html,
)
from fastapi.responses import HTMLResponse, Response
from fastapi.staticfiles import StaticFiles

ASSETS_PATH = "/docs-assets"
REDOC_SCRIPT_PATH = "/docs-offline/redoc.standalone.js"
# The one URL the ReDoc bundle fetches by itself: the "API docs by Redocly" footer logo.
_REDOC_CDN_LOGO = "https://cdn.redoc.ly/redoc/logo-mini.svg"


def install_docs(app: FastAPI, *, title: str) -> None:
    """Mounts the bundled assets and the ``/docs`` and ``/redoc`` pages that use them."""
    app.mount(ASSETS_PATH, StaticFiles(directory=_assets_dir()), name="docs-assets")
    openapi_url = app.openapi_url or "/openapi.json"
    oauth2_redirect_url = "/docs/oauth2-redirect"

    @app.get("/docs", include_in_schema=False)
    async def swagger_ui() -> HTMLResponse:
        return get_swagger_ui_html(
            openapi_url=openapi_url,
            title=f"{title} — API docs",
            swagger_js_url=f"{ASSETS_PATH}/swagger-ui-bundle.js",
            swagger_css_url=f"{ASSETS_PATH}/swagger-ui.css",
            swagger_favicon_url=f"{ASSETS_PATH}/favicon.png",
            oauth2_redirect_url=oauth2_redirect_url,
            # Swagger UI would send the document to validator.swagger.io for its badge.
            swagger_ui_parameters={"validatorUrl": None},
        )

    @app.get(oauth2_redirect_url, include_in_schema=False)
    async def swagger_ui_redirect() -> HTMLResponse:
        return get_swagger_ui_oauth2_redirect_html()

    @app.get("/redoc", include_in_schema=False)
    async def redoc() -> HTMLResponse:
        return get_redoc_html(
            openapi_url=openapi_url,
            title=f"{title} — API reference",
            redoc_js_url=REDOC_SCRIPT_PATH,
            redoc_favicon_url=f"{ASSETS_PATH}/favicon.png",
            with_google_fonts=False,
        )

    @app.get(REDOC_SCRIPT_PATH, include_in_schema=False)
    async def redoc_script_offline() -> Response:
        return Response(_offline_redoc_script(), media_type="text/javascript")


@cache
def _offline_redoc_script() -> str:
    script = (_assets_dir() / "redoc.standalone.js").read_text(encoding="utf-8")
    return script.replace(_REDOC_CDN_LOGO, f"{ASSETS_PATH}/favicon.png")


def _assets_dir() -> Path:
    # fastapi-offline ships the Swagger UI bundle, its CSS and the ReDoc standalone build.
    return Path(str(files("fastapi_offline") / "static"))
