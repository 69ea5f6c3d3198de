//! Ember's storage layer: one `object_store`-based layer for file://, s3://, hdfs:// and memory://
//! URLs, partitioned text, CSV, JSON lines, Arrow IPC and Parquet sources and sinks, and atomic
//! output commit.
