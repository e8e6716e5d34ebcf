"""Search algorithms, one per file, as generators of events over the small ``SearchSpace`` interface of
``core``; ``registry`` lists them with their parameters. They import no model library and nothing from
``backends``, ``ui`` or ``storage``."""
