"""The API's documentation: the OpenAPI document's finishing (``document``) and the pages that
render it, Swagger UI at ``/docs`` and ReDoc at ``/redoc`` (``pages``), served from this
machine with no CDN."""
