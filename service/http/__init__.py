"""The HTTP/JSON front end: our own API under /v1, LibreTranslate's API, and a web page.

A converter over the same front door as gRPC (service.serving.front_door): JSON in, a
front-door call, JSON out; errors through one table (errors.py); auth, drain and body limits
in one ASGI middleware. Served by uvicorn on its own port (`http_port`).
"""
