"""The platform adapters behind one contract (`base.py`: Inbound, Reply, Channel, DeliveryError,
WebhookRoute) and the registry of running channels (`registry.py`). Each adapter (`telegram/`,
`zalo_bot/`, `zalo_oa/`, `console.py`) only translates: platform updates to `Inbound`, `Reply` to the platform,
errors to `DeliveryError`; it owns its webhook route and envelope. May import bot.kernel only; no
platform type leaves an adapter."""
