"""common: parameter checks, where things live on disk, and a run's progress report.  Standard library
(and tqdm for the progress bar) only; every other package may import it, it imports nothing of chartlib."""
