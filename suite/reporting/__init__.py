"""Reporting: leaderboard tables (Markdown, CSV, HTML, LaTeX), plots, the HTML page and reproduction
reports — views of stored run results."""
