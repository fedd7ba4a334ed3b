"""The outermost layer: `wiring.py` (the one composition root: every service built by constructor into
a frozen `Core`), `service.py` (the `run` lifecycle: listen, start the channels, then the services,
stop in reverse) and `web.py` (the one HTTP server, mounting the routes each channel owns, /healthz,
/metrics). May import every package; only `bot.cli` imports it."""
