"""runs: trained runs as data.  The on-disk run cache (keyed by a run's config and the code version of
``chartlib.core`` and ``chartlib.datasets``), the worker processes that train missing runs side by side,
and a chapter's arms trained as one batch.  Imports ``core``, ``datasets`` and ``common``."""
