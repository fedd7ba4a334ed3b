"""Telegram through python-telegram-bot 22: polling or webhook, HTML rendering, inline keyboards."""
