"""book: building the book (papermill into a staging copy, then Jupyter Book), its timing record, the
notebooks' ``setup`` and ``save``, and a small Sphinx extension.  The top of the import order:
nothing in chartlib imports it."""
