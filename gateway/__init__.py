"""The OpenAI-compatible gateway: ``/v1/chat/completions``, ``/v1/completions`` and ``/v1/models`` served beside
the web app on the same port. ``protocol`` turns OpenAI request bodies into run configurations and engine
events into OpenAI response bodies (HTTP shaping only); ``server`` holds the routes, the API-key rule and the
runs' threads, and serves them with the UI."""
