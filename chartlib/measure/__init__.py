"""measure: numbers from samples and runs.  Distances, mode and surface scores, the two-NN dimension,
the evaluation classifier and its scores, the released field's differences.  Imports ``core``,
``datasets`` and ``common``; never trains a chapter's runs."""
