"""rtstyle: real-time painting styles for webcam and video."""

__version__ = "0.1.0"
