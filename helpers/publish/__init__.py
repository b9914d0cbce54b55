"""What is published from the run records: statistics (`stats`), where errors come from
(`diagnosis`), the report's tables and the README block (`tables`), the figures (`figures`),
and the summary that executes the summary and analysis notebooks (`summary`)."""
