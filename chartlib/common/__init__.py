"""common: parameter checks and where things live on disk.  Standard library only; every other package
may import it, it imports nothing of chartlib."""
