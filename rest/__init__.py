"""The REST front door: a bare Starlette app served by uvicorn (``python -m rest``)."""
