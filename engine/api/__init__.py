"""berthd's Docker Engine API (aiohttp): one module per route group."""
