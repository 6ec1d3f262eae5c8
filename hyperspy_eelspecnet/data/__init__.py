"""Example data sets, synthesised on the fly (no data files are shipped).

>>> from hyperspy_eelspecnet.data import silver_nanowire
>>> s = silver_nanowire()  # doctest: +SKIP
"""

from ._silver_nanowire import membrane_hole, silver_nanowire, silver_nanowire_vacuum

__all__ = ["silver_nanowire", "silver_nanowire_vacuum", "membrane_hole"]
