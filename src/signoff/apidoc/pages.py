"""``/docs`` (Swagger UI 5) and ``/redoc`` (ReDoc 2): both read the OpenAPI 3.1 document.

Their scripts and styles come from the ``fastapi-offline`` package, served here, so the pages
ask nothing of another origin (their Content-Security-Policy says so to the browser too); the
only script of ours starts Swagger UI (no inline script).
"""

from __future__ import annotations

from pathlib import Path

import fastapi_offline
from fastapi import FastAPI
from fastapi.responses import HTMLResponse
from fastapi.staticfiles import StaticFiles

VENDOR_DIR = Path(fastapi_offline.__file__).parent / "static"
OWN_DIR = Path(__file__).parent / "static"
VENDOR_URL = "/static/apidocs/vendor"
OWN_URL = "/static/apidocs"

_SWAGGER_PAGE = f"""<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>Signoff API</title>
<link rel="icon" type="image/png" href="{VENDOR_URL}/favicon.png">
<link rel="stylesheet" href="{VENDOR_URL}/swagger-ui.css">
</head>
<body>
<div id="swagger-ui"></div>
<script src="{VENDOR_URL}/swagger-ui-bundle.js"></script>
<script src="{OWN_URL}/swagger-init.js"></script>
</body>
</html>
"""

_REDOC_PAGE = f"""<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>Signoff API</title>
<link rel="icon" type="image/png" href="{VENDOR_URL}/favicon.png">
</head>
<body>
<redoc spec-url="/openapi.json"></redoc>
<script src="{VENDOR_URL}/redoc.standalone.js"></script>
</body>
</html>
"""


# The pages may load nothing from another origin, whatever the bundled scripts try: ReDoc's
# sidebar, for one, shows a logo from its vendor's CDN (the browser now refuses it, and ReDoc
# then leaves it out). The bundles inject their styles, and ReDoc's search runs in a blob: worker.
DOCS_HEADERS = {
    "Content-Security-Policy": "default-src 'self'; script-src 'self'; "
    "style-src 'self' 'unsafe-inline'; img-src 'self' data:; font-src 'self' data:; "
    "worker-src 'self' blob:; connect-src 'self'; frame-ancestors 'none'; form-action 'self'; "
    "base-uri 'none'",
}


def install_docs(app: FastAPI) -> None:
    """Serve the two documentation pages and their assets."""
    # The more specific mount first: /static/apidocs/vendor is the package's, the rest ours.
    app.mount(VENDOR_URL, StaticFiles(directory=str(VENDOR_DIR)), name="apidocs-vendor")
    app.mount(OWN_URL, StaticFiles(directory=str(OWN_DIR)), name="apidocs")

    @app.get("/docs", include_in_schema=False)
    async def swagger_ui() -> HTMLResponse:
        return HTMLResponse(_SWAGGER_PAGE, headers=DOCS_HEADERS)

    @app.get("/redoc", include_in_schema=False)
    async def redoc() -> HTMLResponse:
        return HTMLResponse(_REDOC_PAGE, headers=DOCS_HEADERS)
