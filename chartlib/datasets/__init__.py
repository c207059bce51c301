"""datasets: MNIST's raw files (pinned hashes, the IDX format, checks), fetching them once, and the digits
as tensors and as a data set the trainers sample.  Imports ``chartlib.core`` and ``chartlib.common``."""
