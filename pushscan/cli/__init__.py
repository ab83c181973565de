"""The command line: one module per command, ``main`` the group (``pushscan``)."""
import os

# pushscan does no linear algebra: numpy's BLAS need not start a thread per core when
# numpy loads (they burn ~0.05-0.1 s of CPU in every process, -j workers included, that
# the read-ahead thread could use). Set before numpy is imported; the user's value wins.
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")

from .main import main, run  # noqa: E402

__all__ = ["main", "run"]
