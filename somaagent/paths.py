"""Where the code is (``BASE_DIR``) and where the service keeps its own files (``VAR_DIR``).

``VAR_DIR`` is ``var/`` beside the code unless ``SOMA_VAR_DIR`` says otherwise: the
embedded database and Redis socket, DEV's generated secrets, the metrics files.
"""

from __future__ import annotations

import os
from pathlib import Path

BASE_DIR = Path(__file__).resolve().parent.parent
VAR_DIR = Path(os.environ.get("SOMA_VAR_DIR", BASE_DIR / "var")).resolve()
