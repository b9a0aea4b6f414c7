"""lanthorn: a static-file web server."""

import os

__version__ = "0.1.0"

if os.environ.get("LANTHORN_PURE") == "1":  # every module from its source (lanthorn.native)
    from lanthorn.native import pure

    pure()
