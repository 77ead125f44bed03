"""Fallback SMTP sink (aiosmtpd) for bench/delivery.py when Postfix's smtp-sink is unavailable.

``python bench/_smtp_sink.py PORT``: accepts every message, keeps nothing, runs until killed.
"""

from __future__ import annotations

import signal
import sys
import threading
from typing import Any

from aiosmtpd.controller import Controller


class Discard:
    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        return "250 2.0.0 Ok: discarded"


def main() -> None:
    port = int(sys.argv[1])
    controller = Controller(Discard(), hostname="127.0.0.1", port=port, server_hostname="sink")
    controller.start()
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    print("ready", flush=True)
    stop.wait()
    controller.stop()


if __name__ == "__main__":
    main()
