"""The asyncio serving layer under every protocol: the front door (one set of operations
with every check), documents, long inputs, the data plane, the model table, hot reload."""
