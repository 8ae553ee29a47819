"""A country node and the coordinator: the I/O around the pure protocol (HTTP, SQLite, timers, CLI)."""
