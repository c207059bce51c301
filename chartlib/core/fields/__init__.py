"""What moves the movers.  A field's settings are a frozen dataclass with ``build(dim, device)``; the
object it builds gives ``velocity``, ``modules`` and ``stats`` (``base.Field``).  One file per field;
export it here."""
from .base import ActingField, Field
from .critic import CriticField, ScoreCritic, dsm_loss
from .kernel import KernelField
from .released import ReleasedKernelField

__all__ = ["ActingField", "Field", "CriticField", "ScoreCritic", "dsm_loss", "KernelField", "ReleasedKernelField"]
