"""Model adapters: one module per provider, all behind the `Model` protocol in `base`."""

__all__: list[str] = []
