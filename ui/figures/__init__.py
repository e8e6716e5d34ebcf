"""Pure figure builders: a folded ``ui.fold.ViewState`` (or a sweep result) in, plotly figures, table rows
or HTML out. Nothing here imports gradio or knows about models."""
