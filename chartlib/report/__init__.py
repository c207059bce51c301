"""report: what the pages show.  Per chapter its tables, figure data and computed sentences, the claims
and their verdicts (``claims``), the figures and the run explorer.  Imports every package below it but
``book``; never trains (the explorer reads the runs a chapter returned)."""
