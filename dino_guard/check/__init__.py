"""Running a check over paths: picking files and readers (inputs), running the
rules over each setup (engine) and printing the findings (report)."""
