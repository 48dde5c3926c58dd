"""The one error type users see: a message that names the file, row or key at fault."""


class SuiteError(Exception):
    """Bad input or a failed precondition; the CLI prints the message and exits non-zero."""


class ConfigError(SuiteError):
    """A bad experiment config (unknown key, wrong type, unknown method / dataset / model)."""


class DataError(SuiteError):
    """A malformed data file or record; the message names the file and row."""
