"""The tests' PostgreSQL server: the launcher the store benchmark uses too (one copy, in
`benchmarks/pg_server.py`), with durability off for speed."""

from benchmarks.pg_server import PostgresServer, PostgresUnavailable

__all__ = ["PostgresServer", "PostgresUnavailable"]
