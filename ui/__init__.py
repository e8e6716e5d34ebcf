"""The Gradio app, one module per tab (``explore``, ``runs``, ``compare``, ``scaling``, ``learn``) around
``app``; ``fold`` turns event dicts into a view state (one fold for live runs, replays, Compare and Learn) and
``figures/`` draws it; ``common`` holds the viewer the tabs share, ``registry`` what the widgets offer."""
