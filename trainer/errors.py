"""``trainer.errors.UserError``, as user code and plug-ins imported it before ``common/`` existed."""

from common.errors import UserError, download_cause

__all__ = ["UserError", "download_cause"]
