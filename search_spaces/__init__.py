"""The search spaces shipped with sharesearch, installed as ``sharesearch._spaces``.

Only the ``*.toml`` files matter: ``sharesearch.space.load_space(NAME)`` reads
``NAME.toml`` from here. Copy one (``sharesearch.space.copy_space``) and edit
the copy.
"""
