"""The method API: ``Method`` entries (paper, taxonomy, feedback, defaults, objective), the batch their
objective sees, registration and lookup (``registry``), and the survey taxonomy table (``taxonomy``).

Method packages (the suite's own ``methods/``, or a third party's) register entries on import and are found
through the ``alignsuite.methods`` entry-point group."""
