"""One run end to end (``run``: prepare, search, store), sweeps over strategies and budgets (``sweep``), budget
caps (``limits``) and ZeroGPU's wrapping of a run's model work (``zerogpu``)."""
