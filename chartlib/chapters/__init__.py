"""chapters: one module per notebook (settings dataclass, ``PROFILES``, arms, ``run() -> Result``), the
registry of chapters (``registry``, from ``_toc.yml``), and what several chapters share (``bimodal``,
``surface``, ``profiles``).  Imports ``common``, ``core``, ``datasets``, ``runs`` and ``measure``; a
chapter module never imports another chapter module."""
