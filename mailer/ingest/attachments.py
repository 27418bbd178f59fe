"""Content-addressed attachment storage: ``<dir>/ab/cd/<sha256>``.

The customer's file name is metadata only (sanitised at parse time); it never becomes a
path. Files are written to a temporary name and renamed, so a crash leaves either nothing
or a complete file; writing the same content twice is a no-op. Files are never executed,
and are created without execute permission.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

from sqlalchemy import insert
from sqlmodel import Session

from mailer.errors import StorageError
from mailer.ingest.mail import ParsedAttachment
from mailer.models import Attachment

_INSERT = insert(Attachment.__table__)  # type: ignore[attr-defined]


class AttachmentStore:
    """Writes attachment bytes under their sha256 and records their metadata."""

    def __init__(self, root: str | Path) -> None:
        self.root = Path(root)

    def path_for(self, sha256: str) -> Path:
        """Where the bytes with this digest live."""
        return self.root / sha256[:2] / sha256[2:4] / sha256

    def write(self, attachment: ParsedAttachment) -> Path:
        """Store the bytes (idempotent); raises StorageError on a disk failure."""
        path = self.path_for(attachment.sha256)
        if path.exists():
            return path
        try:
            if not path.parent.is_dir():
                path.parent.mkdir(parents=True, exist_ok=True)
            fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".tmp-")
            with os.fdopen(fd, "wb") as fh:
                fh.write(attachment.data)
            os.chmod(tmp, 0o640)
            os.replace(tmp, path)
        except OSError as exc:
            raise StorageError(f"cannot store attachment {attachment.sha256}: {exc}") from exc
        return path

    def save_all(self, session: Session, message_row_id: int,
                 attachments: tuple[ParsedAttachment, ...]) -> None:
        """Write every attachment and add its metadata row to ``session``."""
        rows = []
        for att in attachments:
            self.write(att)
            rows.append({"message_row_id": message_row_id, "filename": att.filename,
                         "content_type": att.content_type[:255], "size": att.size,
                         "sha256": att.sha256, "content_id": att.content_id,
                         "inline": att.inline})
        if rows:
            session.execute(_INSERT, rows)
