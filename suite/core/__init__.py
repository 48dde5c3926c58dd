"""Core: what every stage uses — errors, file io (atomic writes, strict YAML, JSON objects), the shipped
resources (leaderboard specs, recipes, paper tables) and logging. Imports nothing else from the suite."""
