"""Errors whose message is meant for a person: the UI shows them as-is, the CLI prints one line."""


class GandemoError(Exception):
    """Base class: ``str(error)`` is a complete, human sentence."""


class SourceError(GandemoError):
    """The model source can't be resolved (bad id, missing repo/revision, offline, gated...)."""


class UnsupportedCheckpointError(GandemoError):
    """The files were found but hold no generator layout that gandemo understands."""


class UnsafeCheckpointError(GandemoError):
    """The file would need to run pickled code to load; it was refused and nothing ran."""


class InvalidInputError(GandemoError):
    """A request parameter is out of range (too many images, zero frames, ...)."""
