"""berthd's records in SQLite (`<data-root>/engine.db`): containers, images, tags, daemon metadata.

Records are JSON documents keyed by id; the columns beside them exist for uniqueness (container
names, tags) and lookups. Every write commits at once, so a SIGKILL of berthd loses nothing it has
answered for.
"""
from __future__ import annotations

import json
import sqlite3
from pathlib import Path

_SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS containers (
    id TEXT PRIMARY KEY, name TEXT NOT NULL UNIQUE, created INTEGER NOT NULL, record TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS images (id TEXT PRIMARY KEY, created INTEGER NOT NULL, record TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS tags (
    ref TEXT PRIMARY KEY, image_id TEXT NOT NULL REFERENCES images(id), tagged_at INTEGER NOT NULL);
"""


class Store:
    def __init__(self, path: str | Path):
        self.path = Path(path)
        self.db = sqlite3.connect(self.path, isolation_level=None, check_same_thread=False)
        self.db.execute("PRAGMA journal_mode=WAL")
        self.db.execute("PRAGMA synchronous=NORMAL")
        self.db.executescript(_SCHEMA)

    def close(self) -> None:
        self.db.close()

    # metadata
    def get_meta(self, key: str) -> str | None:
        row = self.db.execute("SELECT value FROM meta WHERE key = ?", (key,)).fetchone()
        return row[0] if row else None

    def set_meta(self, key: str, value: str) -> None:
        self.db.execute("INSERT OR REPLACE INTO meta (key, value) VALUES (?, ?)", (key, value))

    # containers
    def insert_container(self, cid: str, name: str, created: int, record: dict) -> None:
        """Raises sqlite3.IntegrityError if the name is taken (the caller checks first)."""
        self.db.execute("INSERT INTO containers (id, name, created, record) VALUES (?, ?, ?, ?)",
                        (cid, name, created, json.dumps(record)))

    def update_container(self, cid: str, name: str, record: dict) -> None:
        self.db.execute("UPDATE containers SET name = ?, record = ? WHERE id = ?",
                        (name, json.dumps(record), cid))

    def delete_container(self, cid: str) -> None:
        self.db.execute("DELETE FROM containers WHERE id = ?", (cid,))

    def load_containers(self) -> list[dict]:
        rows = self.db.execute("SELECT record FROM containers ORDER BY created").fetchall()
        return [json.loads(r[0]) for r in rows]

    # images
    def put_image(self, image_id: str, created: int, record: dict) -> None:
        self.db.execute("INSERT OR REPLACE INTO images (id, created, record) VALUES (?, ?, ?)",
                        (image_id, created, json.dumps(record)))

    def delete_image(self, image_id: str) -> None:
        self.db.execute("BEGIN")
        try:
            self.db.execute("DELETE FROM tags WHERE image_id = ?", (image_id,))
            self.db.execute("DELETE FROM images WHERE id = ?", (image_id,))
        except BaseException:
            self.db.execute("ROLLBACK")
            raise
        self.db.execute("COMMIT")

    def load_images(self) -> list[dict]:
        rows = self.db.execute("SELECT record FROM images ORDER BY created").fetchall()
        return [json.loads(r[0]) for r in rows]

    def set_tag(self, ref: str, image_id: str, when: int) -> None:
        self.db.execute("INSERT OR REPLACE INTO tags (ref, image_id, tagged_at) VALUES (?, ?, ?)",
                        (ref, image_id, when))

    def delete_tag(self, ref: str) -> None:
        self.db.execute("DELETE FROM tags WHERE ref = ?", (ref,))

    def load_tags(self) -> list[tuple[str, str, int]]:
        return list(self.db.execute("SELECT ref, image_id, tagged_at FROM tags ORDER BY ref"))
