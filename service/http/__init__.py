"""The HTTP/JSON front end: our own API under /v1, LibreTranslate's API, and a web page.

A thin adapter over the same data plane as gRPC (service.serving): it validates through the
same code, maps errors through one table (errors.py) and shares auth tokens, metrics and
drain with the gRPC server. Served by uvicorn on its own port (`http_port`).
"""
