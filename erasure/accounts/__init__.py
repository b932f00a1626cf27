"""Who may act: the tables of API keys and console users, and their roles."""
