"""Durable state: one SQLite file plus upload and thumbnail files in the data directory.

SQLite runs in WAL mode with ``synchronous=NORMAL`` (as the reference): a commit survives the
process being killed (the WAL is in the OS's hands), not a power cut. Every operation row is written
in the same transaction as the canvas change it makes, before its ack is sent.

Two persistence modes, one per profile:
- ``full_rewrite``: the whole canvas re-serialised into its row at every operation (the reference's
  O(canvas) cost per operation);
- ``delta``: the operation row alone (an append-only log); a snapshot every ``snapshot_every_ops``
  operations, and loading replays the log past the snapshot.
"""

from __future__ import annotations

import sqlite3
import threading
import time
from pathlib import Path
from typing import Any

from bulkbench.protocol import dumps, loads

CHECKPOINT_EVERY_S = 1.0

SCHEMA = """
CREATE TABLE IF NOT EXISTS canvases (
    id TEXT PRIMARY KEY,
    snapshot TEXT NOT NULL,
    snapshot_version INTEGER NOT NULL
);
CREATE TABLE IF NOT EXISTS operations (
    canvas_id TEXT NOT NULL,
    operation_id TEXT NOT NULL,
    version INTEGER NOT NULL,
    frame TEXT NOT NULL,
    ack TEXT NOT NULL,
    PRIMARY KEY (canvas_id, operation_id)
);
CREATE TABLE IF NOT EXISTS uploads (
    filename TEXT PRIMARY KEY,
    hash TEXT NOT NULL,
    size INTEGER NOT NULL,
    content_type TEXT NOT NULL,
    created REAL NOT NULL
);
CREATE INDEX IF NOT EXISTS uploads_by_hash ON uploads (hash);
"""


class Storage:
    """The server's SQLite database and file tree. Calls are synchronous and short."""

    def __init__(self, data_dir: Path) -> None:
        self.data_dir = Path(data_dir)
        self.uploads_dir = self.data_dir / "uploads"
        self.thumbnails_dir = self.data_dir / "thumbnails"
        self.incoming_dir = self.data_dir / "incoming"
        for folder in (self.uploads_dir, self.thumbnails_dir, self.incoming_dir):
            folder.mkdir(parents=True, exist_ok=True)
        for stale in self.incoming_dir.iterdir():  # half-received bodies from a killed server
            stale.unlink(missing_ok=True)
        self.db = sqlite3.connect(
            self.data_dir / "bulkbench.sqlite3", isolation_level=None, check_same_thread=False
        )
        self.db.execute("PRAGMA journal_mode=WAL")
        self.db.execute("PRAGMA synchronous=NORMAL")
        self.db.execute("PRAGMA wal_autocheckpoint=0")  # checkpoints (and their fsync) happen off the loop
        self.db.executescript(SCHEMA)
        self._stop_checkpoints = threading.Event()
        self._checkpointer = threading.Thread(target=self._checkpoint_loop, name="wal-checkpoint", daemon=True)
        self._checkpointer.start()
        self._upload_names: set[str] = {
            row[0] for row in self.db.execute("SELECT filename FROM uploads")
        }

    def _checkpoint_loop(self) -> None:
        """Fold the WAL into the database every ``CHECKPOINT_EVERY_S`` from a connection of its own.

        SQLite's automatic checkpoint runs inside a commit, so its fsync would stall the event loop
        (and every operation behind it) for tens of milliseconds; a PASSIVE checkpoint here never
        blocks a writer."""
        connection = sqlite3.connect(self.data_dir / "bulkbench.sqlite3", check_same_thread=False)
        try:
            while not self._stop_checkpoints.wait(CHECKPOINT_EVERY_S):
                connection.execute("PRAGMA wal_checkpoint(PASSIVE)")
        finally:
            connection.close()

    def close(self) -> None:
        self._stop_checkpoints.set()
        self._checkpointer.join(timeout=10)
        self.db.close()

    # ------------------------------------------------------------------ canvases

    def load_canvas(self, canvas_id: str) -> tuple[dict[str, Any], list[tuple[str, str, str]]] | None:
        """The last snapshot and the (operation_id, frame, ack) rows after it, or None if unknown."""
        row = self.db.execute(
            "SELECT snapshot, snapshot_version FROM canvases WHERE id = ?", (canvas_id,)
        ).fetchone()
        if row is None:
            return None
        snapshot, snapshot_version = loads(row[0]), row[1]
        tail = self.db.execute(
            "SELECT operation_id, frame, ack FROM operations"
            " WHERE canvas_id = ? AND version > ? ORDER BY rowid",
            (canvas_id, snapshot_version),
        ).fetchall()
        return snapshot, tail

    def load_acks(self, canvas_id: str) -> dict[str, str]:
        """Every operation's stored ack, so a retried operation id is answered, not re-applied."""
        return dict(
            self.db.execute(
                "SELECT operation_id, ack FROM operations WHERE canvas_id = ?", (canvas_id,)
            ).fetchall()
        )

    def canvas_ids(self) -> list[str]:
        return [row[0] for row in self.db.execute("SELECT id FROM canvases")]

    def create_canvas(self, canvas: dict[str, Any]) -> None:
        self.db.execute(
            "INSERT OR IGNORE INTO canvases (id, snapshot, snapshot_version) VALUES (?, ?, ?)",
            (canvas["id"], dumps(canvas), canvas["version"]),
        )

    def record_operation(
        self,
        canvas_id: str,
        operation_id: str,
        version: int,
        frame: str,
        ack: str,
        snapshot: dict[str, Any] | None,
    ) -> int:
        """One transaction: the operation row, and the canvas snapshot when one is due.

        The canvas row is touched only for a snapshot (rewriting it means rewriting its whole
        blob); the current version is the log's. Returns the snapshot's size in bytes, or 0.
        """
        snapshot_text = dumps(snapshot) if snapshot is not None else ""
        with self.db:  # BEGIN ... COMMIT, or ROLLBACK if anything raises
            self.db.execute("BEGIN")
            self.db.execute(
                "INSERT INTO operations (canvas_id, operation_id, version, frame, ack)"
                " VALUES (?, ?, ?, ?, ?)",
                (canvas_id, operation_id, version, frame, ack),
            )
            if snapshot is not None:
                self.db.execute(
                    "UPDATE canvases SET snapshot = ?, snapshot_version = ? WHERE id = ?",
                    (snapshot_text, version, canvas_id),
                )
        return len(snapshot_text)

    # ------------------------------------------------------------------ uploads

    def upload_exists(self, filename: str) -> bool:
        return filename in self._upload_names

    def upload_names(self) -> list[str]:
        return sorted(self._upload_names)

    def delete_upload(self, filename: str) -> None:
        """The upload's row, its file and its thumbnails, gone (the file sweep's deletion)."""
        self.db.execute("DELETE FROM uploads WHERE filename = ?", (filename,))
        self._upload_names.discard(filename)
        (self.uploads_dir / filename).unlink(missing_ok=True)
        stem = Path(filename).stem
        for size_dir in self.thumbnails_dir.iterdir():
            (size_dir / f"{stem}.webp").unlink(missing_ok=True)

    def upload_by_hash(self, image_hash: str) -> str | None:
        row = self.db.execute(
            "SELECT filename FROM uploads WHERE hash = ? ORDER BY created LIMIT 1", (image_hash,)
        ).fetchone()
        return row[0] if row else None

    def record_upload(self, filename: str, image_hash: str, size: int, content_type: str) -> None:
        self.db.execute(
            "INSERT INTO uploads (filename, hash, size, content_type, created) VALUES (?, ?, ?, ?, ?)",
            (filename, image_hash, size, content_type, time.time()),
        )
        self._upload_names.add(filename)
