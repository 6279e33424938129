"""SQLite persistence (sqlite-utils): every turn, feedback and user is stored here."""
