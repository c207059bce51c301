"""core: what trains.  Toy data and the prior, networks, the drifting field, fields, encoders, the
training loop and the three methods.  Imports torch and ``chartlib.common`` only: no disk, no
notebook.  The run cache's code version is the hash of this package and ``chartlib.datasets``."""
