"""Figure encoding shared by the report's sections: a matplotlib figure as base64 PNG."""

from __future__ import annotations

import base64
import io
from typing import Any

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt

__all__ = ["png_base64"]


def png_base64(fig: Any) -> str:
    """Lay out, encode (no software tag, so identical figures give identical bytes) and close."""
    buffer = io.BytesIO()
    fig.tight_layout()
    fig.savefig(buffer, format="png", metadata={"Software": None})
    plt.close(fig)
    return base64.b64encode(buffer.getvalue()).decode("ascii")
