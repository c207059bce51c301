"""chartlib: drifting fields, chart transport and the measurements behind the book."""
