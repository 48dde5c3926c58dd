"""Registry entries, one module per method family. Importing this package registers them all.

Every module in this package is imported, so adding a method is adding (or editing) one module here.
"""

import importlib
import pkgutil

for _module in sorted(m.name for m in pkgutil.iter_modules(__path__)):
    importlib.import_module(f"{__name__}.{_module}")
