"""``python -m reprtut.cache export --profile P --out DIR``: see :mod:`reprtut.cache.bundle`."""

import sys

from .bundle import main

sys.exit(main())
