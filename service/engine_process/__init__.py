"""Where served models are decoded, both sides of the process boundary: the engine-core
process (worker, wire format, engine thread) and the front end's client of it (supervisor,
link, backends, thread mode, the asyncio bridge)."""
