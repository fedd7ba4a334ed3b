"""The embedded SQLite store: one aiosqlite connection in WAL mode and the numbered migrations.
Imports nothing of the project; each table's SQL lives in the module that owns it."""
