"""End-to-end tests of the asyncio layer (a package, so that module names don't clash with tests/protocol)."""
