"""``python -m chartlib.book``: build the book (see ``chartlib.book.build``)."""
import sys

from .build import main

sys.exit(main())
