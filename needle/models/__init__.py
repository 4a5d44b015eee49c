"""Models built from needle.nn layers."""

from .language import LanguageModel

__all__ = ["LanguageModel"]
