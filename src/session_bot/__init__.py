"""session-bot: runs a recurring online expert-exchange series on Zoom end to end."""

__version__ = "0.1.0"
