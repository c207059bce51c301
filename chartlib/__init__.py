"""chartlib: drifting fields, charts and the book's experiments (see README's layout section)."""
import os as _os

# Before torch loads its OpenMP runtime: passive waiting, as under the book build (see compute.py).
_os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
