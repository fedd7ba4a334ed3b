"""What every package may use and which imports nothing of the project: settings (`config.py`),
logging with secret redaction (`logs.py`), content loading (`content.py`), Vietnamese sentences
(`messages.py`), folding and tokens (`vietnamese.py`), light markup (`markup.py`), dates
(`dates.py` where present), background-task helpers (`tasks.py`) and the long-lived heap kept out
of the garbage collector's walks (`heap.py`)."""
