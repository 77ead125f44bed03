"""What the use cases need from the outside world, as small protocols: one module per system.

The adapters implement them; the use cases never import an adapter.
"""
