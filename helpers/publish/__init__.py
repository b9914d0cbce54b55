"""What is published from the run records: statistics (`stats`), where errors come from
(`diagnosis`), the readings study's rule (`readings`), the tables and the README block
(`tables`), the figures (`figures`), and publishing itself (`summary`)."""
