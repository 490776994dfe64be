"""The asyncio serving layer over the engine core: data plane, model table, hot reload."""
