"""Bounded-memory curation: record batches, resumable Parquet shards, MinHash LSH, local and Ray Data executors."""
