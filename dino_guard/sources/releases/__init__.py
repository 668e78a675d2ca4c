"""What each lightly release has (catalog), which release a project pins (pins),
and the DG707/DG708 verdict on a script's lightly names (verdict)."""
