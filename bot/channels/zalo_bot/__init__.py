"""The Zalo Bot Platform over aiohttp: polling or webhook, plain text with numbered options."""
