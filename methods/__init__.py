"""Registry entries, one module per method family. Importing this package registers them all."""

from methods import common, dpo, kto, sft, una  # noqa: F401
