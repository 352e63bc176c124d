"""The history database: models, migrations, the single writer and the reads."""
