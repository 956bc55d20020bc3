"""Errors a user can cause. The CLI prints their message and exits non-zero, no traceback."""


class InrcodecError(Exception):
    """Base class of every error caused by input, files or options."""


class FormatError(InrcodecError):
    """A compressed file is malformed, truncated or of an unsupported version."""


class ChecksumError(FormatError):
    """A compressed file's CRC-32 does not match its contents."""


class ModelError(InrcodecError):
    """A shared model is missing, damaged, or not the one a file needs."""


class ModelMismatchError(ModelError):
    """A compressed file names a different shared model from the one supplied."""


class ImageError(InrcodecError):
    """An input image cannot be read or is not supported."""


class OutputExistsError(InrcodecError):
    """Refusing to overwrite an existing file without force."""


class DatasetError(InrcodecError):
    """A training or evaluation dataset could not be fetched, found or read."""
