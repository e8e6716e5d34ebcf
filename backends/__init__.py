"""Adapters over real model libraries, one folder per domain.

Here: what the app knows and how problems are named (``catalog``: every model and verifier id, where it
loads from and whether it is available; ``problem_ids``; ``errors``) and the table of domains a run can
search in (``domains``). ``text/`` is the reasoning domain, ``image/`` the digits and text-to-image domains,
``embedded/`` the tiny tasks, their training scripts and committed weights. The catalog describes entries and
imports no domain back; each domain builds its models from the catalog's entries (``text.loaders``,
``image.loaders``).
"""
