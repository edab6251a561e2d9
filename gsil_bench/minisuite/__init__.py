"""The mini suite: the embedded instrument, four small programmatic domains and a tiny model.

``config`` (the ``data.mini`` and ``model.tiny`` sections), ``suite`` (building the splits),
``task`` (what the domains share), one module per domain holding its generator and its scorer
(``math_tasks``, ``code_tasks``, ``dialogue_tasks``, ``safety_tasks``), ``scoring`` (one result
per domain), ``tiny`` (tokenizer and Llama), ``base`` (the base SFT recipe). It plugs into the
rest through registries only: ``model`` is the model provider ``tiny``, ``data`` the
demonstration source ``mini``, ``benchmark`` the benchmark ``mini``.

Import from the modules themselves; this package imports nothing.
"""
