"""``ndl.testing.gradcheck``: the name docs/custom_ops.md first used for checking a new op.
It is ``ndl.gradcheck`` (``needle/gradcheck.py``), the one checker for needle's own op tests
and its users."""

from .gradcheck import GradcheckError, gradcheck, gradgradcheck

__all__ = ["GradcheckError", "gradcheck", "gradgradcheck"]
