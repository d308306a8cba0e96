"""The server's rules, sans-I/O: the server's twin of ``bulkbench.effects``.

Three plain objects, no sockets, no threads, no clock of their own, driven by two engines as the
strategies are:

- ``session.Session``: one client socket's conversation (join, auth, sync, undo, ping in; frames out;
  an operation handed back as ``Execute`` for the driver to run through its stages);
- ``operations.Room``: one canvas's operation desk (idempotency and in-flight duplicates, apply,
  answer, what persisting costs, broadcasts, undo push);
- ``uploads.UploadDesk``: the upload desk (admission, the check's item count, de-duplication, the
  thumbnail plan and its after-the-answer backlog, what a thumbnail GET answers);
- ``sweep.unused``: which stored uploads a sweep deletes (no canvas's node names them).

``reference_server`` drives them under asyncio (raw WebSocket and Socket.IO alike), ``sim.model``
with SimPy callbacks; each supplies only what takes time or touches the world: stages, storage, names.
A frame is ``(event, data)``; a transport encodes it.
"""

from bulkbench.server_core.operations import Begun, Frame, Reply, Room, Step, items_of, overloaded, rejection
from bulkbench.server_core.session import Execute, Session
from bulkbench.server_core.sweep import unused
from bulkbench.server_core.uploads import ThumbnailJob, UploadDesk, upload_answer

__all__ = ["Begun", "Execute", "Frame", "Reply", "Room", "Session", "Step", "ThumbnailJob", "UploadDesk",
           "items_of", "overloaded", "rejection", "unused", "upload_answer"]
