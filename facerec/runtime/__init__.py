"""Runtimes that embed aligned faces: one `Embedder` interface, one module per runtime (base.load_embedder picks)."""
